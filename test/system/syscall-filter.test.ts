/**
 * The unit's SystemCallFilter= must allow every system call the daemon makes —
 * loading a module, running a modprobe.d install command, the uevent socket,
 * the walk, a reload — or, with SystemCallErrorNumber=EPERM, a call the filter
 * blocks would fail under systemd only. No systemd runs here (it is not PID 1),
 * so the proof is: strace the real CLI doing all of that, and check every call
 * it made against the filter's sets as systemd-analyze expands them.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawNetlinkSocket } from 'netlink';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatUevent } from '../../src/core/uevent.js';
import { requireRoot } from '../support/daemon-helpers.js';

function tool(name: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${name} is not installed: this test needs it (CI installs it in .ci/run)`);
  }
}

/** The system calls of a filter set, expanded as systemd expands it (@groups nest). */
function expand(set: string, seen = new Set<string>()): Set<string> {
  const out = new Set<string>();
  if (seen.has(set)) return out;
  seen.add(set);
  const listing = execFileSync('systemd-analyze', ['syscall-filter', set], { encoding: 'utf8' });
  for (const line of listing.split('\n').slice(1)) {
    const w = line.trim();
    if (w === '' || w.startsWith('#')) continue;
    if (w.startsWith('@')) for (const s of expand(w, seen)) out.add(s);
    else out.add(w);
  }
  return out;
}

/** System calls in an `strace -f` log. */
function calls(log: string): Set<string> {
  const out = new Set<string>();
  for (const m of log.matchAll(/^\d+ +([a-z_0-9]+)\(/gm)) out.add(m[1]!);
  return out;
}

/**
 * Under `dir`: a module tree whose `modules` (each a .ko of bytes the kernel
 * gets to refuse) all serve platform:pcspkr, a modprobe.d with `conf`, a
 * sysfs with that one device, and a procfs that says "this kernel loads
 * modules", so that finit_module is really called.
 */
function coldplugTree(dir: string, modules: string[], conf: string): { mods: string; conf: string; sysfs: string; procfs: string } {
  const mods = join(dir, 'modules');
  mkdirSync(join(mods, 'kernel'), { recursive: true });
  for (const m of modules) writeFileSync(join(mods, `kernel/${m}.ko`), Buffer.alloc(64));
  writeFileSync(join(mods, 'modules.dep'), modules.map((m) => `kernel/${m}.ko:\n`).join(''));
  writeFileSync(join(mods, 'modules.alias'), modules.map((m) => `alias platform:pcspkr ${m}\n`).join(''));
  const confDir = join(dir, 'modprobe.d');
  mkdirSync(confDir);
  writeFileSync(join(confDir, `${modules.at(-1)!}.conf`), conf);
  const sysfs = join(dir, 'sys');
  mkdirSync(join(sysfs, 'devices/platform/pcspkr'), { recursive: true });
  writeFileSync(join(sysfs, 'devices/platform/pcspkr/uevent'), 'MODALIAS=platform:pcspkr\n');
  const procfs = join(dir, 'proc');
  mkdirSync(procfs);
  writeFileSync(join(procfs, 'modules'), '');
  return { mods, conf: confDir, sysfs, procfs };
}

describe('the unit\'s system call filter', () => {
  beforeAll(() => {
    requireRoot();
    tool('strace');
    tool('systemd-analyze');
  });

  it('allows every call of a load, an install command, the socket, a walk, a reload and a stop', async () => {
    const unit = readFileSync('systemd/hotplugd.service', 'utf8');
    const sets = [...unit.matchAll(/^SystemCallFilter=(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(sets.slice(0, 2)).toEqual(['@system-service', '@module']);
    const allowed = new Set(sets.flatMap((s) => (s.startsWith('@') ? [...expand(s)] : [s])));
    expect(allowed.has('finit_module')).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-seccomp-'));
    // x.ko (bytes the kernel gets to refuse) for pcspkr's alias; y has an install command.
    const { mods, conf, sysfs, procfs } = coldplugTree(dir, ['x', 'y'], 'install y /bin/true\n');

    const coldplugLog = join(dir, 'coldplug.strace');
    const cp = spawnSync(
      'strace',
      ['-f', '-qq', '-o', coldplugLog, process.execPath, 'dist/src/cli.js', 'coldplug', '--mode', 'load', '--modules-dir', mods, '--config-dir', conf, '--cmdline', '', '--sysfs', sysfs, '--procfs', procfs, '--log-format', 'json'],
      { encoding: 'utf8' },
    );
    expect(cp.status).toBe(1); // coldplug's answer when a load failed
    const out = cp.stdout;
    expect(out).toMatch(/"module":"x".*"result":"failed"/); // the kernel refused it: the call was made
    expect(out).toMatch(/"module":"y".*"result":"install-command".*"exitCode":0/);

    const runLog = join(dir, 'run.strace');
    const proc = spawn('strace', ['-f', '-qq', '-o', runLog, process.execPath, 'dist/src/cli.js', 'run', '--demo', '--sysfs', sysfs, '--config-dir', '', '--log-format', 'json', '--control', join(dir, 'control')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    proc.stdout.on('data', (d: Buffer) => (text += d.toString()));
    const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
    const until = async (re: RegExp): Promise<void> => {
      for (let i = 0; i < 300 && !re.test(text); i++) await new Promise((r) => setTimeout(r, 50));
      expect(text).toMatch(re);
    };
    await until(/"msg":"demo:/);
    const daemonPid = Number(execFileSync('pgrep', ['-P', String(proc.pid), '-f', 'cli.js'], { encoding: 'utf8' }).trim().split('\n')[0]);
    // A uevent-shaped message from userspace: received (recvmsg) and rejected.
    const sender = new RawNetlinkSocket(15);
    try {
      const msg = formatUevent('add', '/devices/platform/forged', { MODALIAS: 'platform:pcspkr', SEQNUM: '1' });
      await new Promise<void>((resolve, reject) => sender.send(msg, { port: 0, groups: 1 }, (e) => (e ? reject(e) : resolve())));
    } finally {
      sender.close();
    }
    await until(/"msg":"uevent rejected"/);
    // The control socket: accept, SO_PEERCRED, a reply.
    const status = spawnSync(process.execPath, ['dist/src/cli.js', 'status', '--control', join(dir, 'control')], { encoding: 'utf8' });
    expect(status.status).toBe(0);
    process.kill(daemonPid, 'SIGHUP');
    await until(/"msg":"reloaded"/);
    process.kill(daemonPid, 'SIGTERM');
    await exited;
    expect(text).toMatch(/"msg":"stopped"/);

    const used = new Set([...calls(readFileSync(coldplugLog, 'utf8')), ...calls(readFileSync(runLog, 'utf8'))]);
    for (const c of ['finit_module', 'execve', 'socket', 'bind', 'setsockopt', 'recvmsg', 'getdents64', 'listen', 'accept4', 'getsockopt', 'umask']) expect(used.has(c), c).toBe(true);
    expect([...used].filter((c) => !allowed.has(c)).sort()).toEqual([]);
  }, 60_000);
});

/** The settings that decide what an install command may do: the unit, then its drop-ins, as systemd merges them. */
function sandbox(files: string[]): { tunablesReadOnly: boolean; caps: Set<string>; filter: string[] } {
  let tunablesReadOnly = false;
  const caps = new Set<string>();
  const filter: string[] = [];
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(/^(ProtectKernelTunables|CapabilityBoundingSet|SystemCallFilter)=(.*)$/gm)) {
      const words = m[2]!.trim().split(/\s+/).filter(Boolean);
      if (m[1] === 'ProtectKernelTunables') tunablesReadOnly = words[0] === 'yes';
      else if (m[1] === 'CapabilityBoundingSet') for (const c of words) caps.add(c); // more than one line: merged (OR)
      else filter.push(...words);
    }
  }
  return { tunablesReadOnly, caps, filter };
}

describe('install commands under the unit\'s sandbox, and the install-commands drop-in', () => {
  beforeAll(() => {
    requireRoot();
    for (const t of ['strace', 'systemd-analyze', 'unshare', 'setpriv', 'sysctl']) tool(t);
  });

  /**
   * systemd is not PID 1 here, so the sandbox is emulated with what it is
   * made of: ProtectKernelTunables= is a read-only bind mount over /sys,
   * /proc/sys and the like (here over a directory standing in for /sys: the
   * host's is never written); CapabilityBoundingSet= is the bounding set
   * (setpriv); SystemCallFilter= is checked against the strace of the run.
   */
  async function runUnder(s: ReturnType<typeof sandbox>): Promise<{ record: Record<string, unknown>; param: string; used: Set<string> }> {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-sandbox-'));
    // The tunables: a module parameter, as /sys/module/y/parameters/p.
    const tunables = join(dir, 'sys-module');
    mkdirSync(join(tunables, 'y/parameters'), { recursive: true });
    writeFileSync(join(tunables, 'y/parameters/p'), '0\n');
    // What admins write (and rdma-core's truescale-serdes.cmds does): set a parameter; read a sysctl (sysctl's own calls).
    const { mods, conf, sysfs, procfs } = coldplugTree(dir, ['y'], `install y sysctl -n kernel.ostype >/dev/null && echo 1 > ${tunables}/y/parameters/p\n`);
    const log = join(dir, 'strace');
    const bounding = ['-all', ...[...s.caps].map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
    const ro = s.tunablesReadOnly ? `mount --bind ${tunables} ${tunables} && mount -o remount,bind,ro ${tunables} && ` : '';
    const cli = [process.execPath, 'dist/src/cli.js', 'coldplug', '--mode', 'load', '--modules-dir', mods, '--config-dir', conf, '--cmdline', '', '--sysfs', sysfs, '--procfs', procfs, '--log-format', 'json'];
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${ro}exec setpriv --bounding-set=${bounding} --inh-caps=-all strace -f -qq -o ${log} "$@"`, 'sh', ...cli], { encoding: 'utf8' });
    const record = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((x) => x.module === 'y');
    if (record === undefined) throw new Error(`no record for y: ${r.stdout}${r.stderr}`);
    return { record, param: readFileSync(join(tunables, 'y/parameters/p'), 'utf8'), used: calls(readFileSync(log, 'utf8')) };
  }

  it('under the shipped unit, a command writing a module parameter fails (read-only tunables); with the drop-in it works, inside the same syscall filter', async () => {
    const unit = 'systemd/hotplugd.service';
    const dropIn = 'systemd/hotplugd.service.d/install-commands.conf';
    const shipped = sandbox([unit]);
    expect(shipped).toMatchObject({ tunablesReadOnly: true, caps: new Set(['CAP_SYS_MODULE', 'CAP_NET_ADMIN']) });
    const lifted = sandbox([unit, dropIn]);
    expect(lifted).toMatchObject({ tunablesReadOnly: false, caps: new Set(['CAP_SYS_MODULE', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN']) });

    const before = await runUnder(shipped);
    expect(before.record).toMatchObject({ result: 'install-command', code: 'E_INSTALL_STATUS' });
    expect(String(before.record.output)).toContain('Read-only file system');
    expect(before.param).toBe('0\n');

    const after = await runUnder(lifted);
    expect(after.record).toMatchObject({ result: 'install-command', exitCode: 0 });
    expect(after.param).toBe('1\n');
    // The command (sh, sysctl, the write) made no call the filter refuses, with or without the drop-in.
    const allowed = new Set(lifted.filter.flatMap((s) => (s.startsWith('@') ? [...expand(s)] : [s])));
    for (const c of ['execve', 'openat', 'write']) expect(after.used.has(c), c).toBe(true);
    expect([...after.used].filter((c) => !allowed.has(c)).sort()).toEqual([]);
    expect(sandbox([unit]).filter).toEqual(lifted.filter);
  }, 60_000);
});
