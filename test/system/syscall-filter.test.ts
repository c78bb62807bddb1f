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
    // A module tree: x.ko (bytes the kernel gets to refuse) for pcspkr's alias;
    // y has an install command.
    const mods = join(dir, 'modules');
    mkdirSync(join(mods, 'kernel'), { recursive: true });
    writeFileSync(join(mods, 'kernel/x.ko'), Buffer.alloc(64));
    writeFileSync(join(mods, 'kernel/y.ko'), Buffer.alloc(64));
    writeFileSync(join(mods, 'modules.dep'), 'kernel/x.ko:\nkernel/y.ko:\n');
    writeFileSync(join(mods, 'modules.alias'), 'alias platform:pcspkr x\nalias platform:pcspkr y\n');
    const conf = join(dir, 'modprobe.d');
    mkdirSync(conf);
    writeFileSync(join(conf, 'y.conf'), 'install y /bin/true\n');
    const sysfs = join(dir, 'sys');
    mkdirSync(join(sysfs, 'devices/platform/pcspkr'), { recursive: true });
    writeFileSync(join(sysfs, 'devices/platform/pcspkr/uevent'), 'MODALIAS=platform:pcspkr\n');
    // A procfs that says "this kernel loads modules", so finit_module is really called.
    const procfs = join(dir, 'proc');
    mkdirSync(procfs);
    writeFileSync(join(procfs, 'modules'), '');

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
