/**
 * The systemd guest's root file system: a Debian bookworm minbase with
 * systemd as PID 1, udev and kmod, built with mmdebstrap from the Debian
 * registry and cached as a tarball keyed by its inputs; then, per run, the
 * kernel's module tree, the package under test installed with `dpkg -i` in a
 * chroot (as an image is built: policy-rc.d forbids starting services), the
 * e2e agent as a unit, and an ext4 disk image made with `mkfs.ext4 -d`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** What the guest needs beyond minbase: systemd as init, udev (whose module loading the package must stop), kmod (modprobe -R in the guest). */
export const INCLUDE = ['systemd', 'systemd-sysv', 'udev', 'kmod', 'libstdc++6', 'procps'];

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26, ...opts });
}

function log(msg: string): void {
  process.stderr.write(`e2e:systemd: ${msg}\n`);
}

/**
 * The base tarball, built once per set of inputs (suite, mirror, packages,
 * mmdebstrap's version) under `cache` (~/.cache/hotplugd/guest): reruns reuse it.
 */
export function baseRootfs(cache: string): string {
  const version = sh('mmdebstrap', ['--version']).trim();
  const args = ['--variant=minbase', `--include=${INCLUDE.join(',')}`, '--format=tar', SUITE];
  const key = createHash('sha256').update(JSON.stringify({ version, args, MIRROR })).digest('hex').slice(0, 16);
  const tar = join(cache, `${SUITE}-minbase-systemd-${key}.tar`);
  if (existsSync(tar)) {
    log(`base root file system from the cache: ${tar}`);
    return tar;
  }
  mkdirSync(cache, { recursive: true });
  for (const f of readdirSync(cache)) if (f.endsWith('.tar.part')) rmSync(join(cache, f), { force: true });
  const t = Date.now();
  log(`building the base root file system with ${version} (${SUITE}, minbase + ${INCLUDE.join(' ')})`);
  execFileSync('mmdebstrap', ['--quiet', ...args, `${tar}.part`, MIRROR], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TMPDIR: cache } });
  renameSync(`${tar}.part`, tar);
  log(`base root file system built in ${Date.now() - t} ms: ${tar} (${(statSync(tar).size / 1048576).toFixed(0)} MiB)`);
  return tar;
}

export interface GuestDiskOptions {
  base: string; // baseRootfs()
  deb: string; // the package under test
  moduleRoot: string;
  abi: string;
  /** Module files (relative to lib/modules/ABI) left out on purpose. */
  remove: string[];
  /** e2e/agent.sh and the unit that runs it. */
  agent: string;
  stage: string; // scratch directory (emptied)
  out: string; // the ext4 image
}

const AGENT_UNIT = `# The e2e test's command channel (e2e/agent.sh on ttyS1), once the guest is up.
[Unit]
Description=hotplugd e2e: command channel on ttyS1
After=multi-user.target
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=simple
ExecStart=/bin/sh /usr/local/lib/hotplugd-e2e/agent.sh /dev/ttyS1 "systemctl poweroff"

[Install]
WantedBy=multi-user.target
`;

/** Unpack, add the modules, dpkg -i the package in a chroot, add the agent, mkfs.ext4 -d. Returns dpkg's output. */
export function guestDisk(o: GuestDiskOptions): string {
  const root = join(o.stage, 'root');
  rmSync(o.stage, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  sh('tar', ['-xf', o.base, '-C', root, '--numeric-owner']);
  // The kernel's module tree, as depmod left it, minus the files removed on purpose.
  const modDir = join(root, 'usr/lib/modules', o.abi);
  cpSync(join(o.moduleRoot, 'lib/modules', o.abi), modDir, { recursive: true, preserveTimestamps: true });
  for (const rel of o.remove) rmSync(join(modDir, rel));
  // dpkg -i as an admin would, in a chroot as an image is built: policy-rc.d says no start.
  const policy = join(root, 'usr/sbin/policy-rc.d');
  writeFileSync(policy, '#!/bin/sh\nexit 101\n');
  chmodSync(policy, 0o755);
  copyFileSync(o.deb, join(root, 'tmp/hotplugd.deb'));
  let dpkg: string;
  try {
    dpkg = execFileSync('chroot', [root, 'dpkg', '-i', '/tmp/hotplugd.deb'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    throw new Error(`dpkg -i in the guest's chroot failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
  rmSync(join(root, 'tmp/hotplugd.deb'));
  rmSync(policy);
  // The agent, enabled as the admin would enable a unit.
  mkdirSync(join(root, 'usr/local/lib/hotplugd-e2e'), { recursive: true });
  copyFileSync(o.agent, join(root, 'usr/local/lib/hotplugd-e2e/agent.sh'));
  writeFileSync(join(root, 'etc/systemd/system/hotplugd-e2e-agent.service'), AGENT_UNIT);
  sh('chroot', [root, 'systemctl', 'enable', '--quiet', 'hotplugd-e2e-agent.service']);
  writeFileSync(join(root, 'etc/hostname'), 'hotplugd-guest\n');
  // Size: what is there plus room for the journal and the index cache.
  const usedKiB = Number(sh('du', ['-sk', root]).split('\t')[0]);
  const sizeMiB = Math.ceil((usedKiB * 1.25) / 1024) + 256;
  rmSync(o.out, { force: true });
  sh('mkfs.ext4', ['-q', '-F', '-L', 'hotplugd-root', '-d', root, o.out, `${sizeMiB}M`]);
  rmSync(o.stage, { recursive: true, force: true });
  return dpkg;
}
