/**
 * The systemd unit and the notify protocol: systemd-analyze verify on the
 * shipped unit, and READY=1 / STOPPING=1 datagrams from the real daemon.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptySysfs, startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

function which(tool: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${tool} is not installed: this test needs it (CI installs it in .ci/run)`);
  }
}

describe('systemd', () => {
  it('ships a unit that systemd-analyze verify accepts, with the hardening the README promises', () => {
    const analyze = which('systemd-analyze');
    const unit = readFileSync('systemd/hotplugd.service', 'utf8');
    for (const line of [
      'Type=notify',
      'Restart=on-failure',
      'DefaultDependencies=no',
      'After=systemd-journald.socket',
      'Before=sysinit.target systemd-udev-trigger.service',
      'ExecStart=/usr/bin/hotplugd run',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'ProtectProc=invisible',
      'IPAddressDeny=any',
      'SystemCallFilter=@system-service @module pkey_alloc pkey_free pkey_mprotect',
      'RuntimeDirectory=hotplugd',
      'RestrictAddressFamilies=AF_NETLINK AF_UNIX',
      'CapabilityBoundingSet=CAP_SYS_MODULE CAP_NET_ADMIN',
      'LimitNOFILE=256',
      'ReadWritePaths=-/var/cache/hotplugd',
    ]) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(unit).toMatch(/\nWatchdogSec=\d+s\n/);
    expect(unit).not.toMatch(/\nProtectKernelModules=/);
    expect(unit).not.toMatch(/\nMemoryDenyWriteExecute=/);
    // The reload is the client, which waits for it and fails when it failed.
    expect(unit).toContain('\nExecReload=/usr/bin/hotplugd reload --control /run/hotplugd/control\n');
    // udev's rule is masked in /run while the daemon runs, as root outside the sandbox.
    expect(unit).toContain('\nExecStartPre=+/usr/lib/hotplugd/udev-rule mask\n');
    expect(unit).toContain('\nExecStopPost=+/usr/lib/hotplugd/udev-rule unmask\n');
    // verify needs the commands to exist: point them at this checkout's build.
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-unit-'));
    const local = unit
      .replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath} ${resolve('dist/src/cli.js')}`)
      .replace(/^ExecReload=\S+/m, `ExecReload=${process.execPath} ${resolve('dist/src/cli.js')}`)
      .replaceAll('/usr/lib/hotplugd/udev-rule', resolve('packaging/udev-rule'));
    writeFileSync(join(dir, 'hotplugd.service'), local);
    // --man=no: hotplugd(8) is installed by the package, not by a checkout
    // (scripts/verify-package.sh runs verify with the man page check).
    const out = execFileSync(analyze, ['verify', '--man=no', join(dir, 'hotplugd.service')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });

  it('ships hotplugd-settle.service: a oneshot after hotplugd, before what needs drivers, that systemd-analyze verify accepts', () => {
    const analyze = which('systemd-analyze');
    const unit = readFileSync('systemd/hotplugd-settle.service', 'utf8');
    for (const line of ['Type=oneshot', 'RemainAfterExit=yes', 'DefaultDependencies=no', 'After=hotplugd.service', 'ExecStart=/usr/bin/hotplugd settle --timeout 120']) {
      expect(unit).toContain(`\n${line}\n`);
    }
    expect(unit).toMatch(/\nBefore=sysinit\.target .*network-pre\.target/);
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-unit-'));
    const cli = `${process.execPath} ${resolve('dist/src/cli.js')}`;
    writeFileSync(join(dir, 'hotplugd.service'), readFileSync('systemd/hotplugd.service', 'utf8').replace(/^ExecStart=\S+/m, `ExecStart=${cli}`));
    writeFileSync(join(dir, 'hotplugd-settle.service'), unit.replace(/^ExecStart=\S+/m, `ExecStart=${cli}`));
    const out = execFileSync(analyze, ['verify', '--man=no', join(dir, 'hotplugd-settle.service')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toBe('');
  });

  it("masks udev's 80-drivers.rules with a link to its own file while it runs, and removes only that link: an admin's mask or file stays", () => {
    const rules = mkdtempSync(join(tmpdir(), 'hotplugd-udev-'));
    const helper = (verb: string): void => void execFileSync('/bin/sh', [resolve('packaging/udev-rule'), verb], { env: { ...process.env, HOTPLUGD_UDEV_RULES_DIR: rules } });
    const mask = join(rules, '80-drivers.rules');
    helper('mask');
    expect(readlinkSync(mask)).toBe(resolve('packaging/udev-mask.rules'));
    expect(readFileSync(mask, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([]); // no rule
    helper('unmask');
    expect(existsSync(mask)).toBe(false);
    for (const admins of [() => symlinkSync('/dev/null', mask), () => writeFileSync(mask, '# runtime rule\n')]) {
      rmSync(mask, { force: true });
      admins();
      const before = lstatSync(mask).isSymbolicLink() ? readlinkSync(mask) : readFileSync(mask, 'utf8');
      helper('mask');
      helper('unmask');
      expect(lstatSync(mask).isSymbolicLink() ? readlinkSync(mask) : readFileSync(mask, 'utf8')).toBe(before);
    }
  });

  it('orders the unit after no mount: a module loader runs before local file systems', () => {
    const unit = readFileSync('systemd/hotplugd.service', 'utf8');
    const settings = unit.split('\n').filter((l) => !l.startsWith('#'));
    // Each of these adds Requires=/After= on mounts (tmp.mount, var.mount) or on
    // systemd-tmpfiles-setup.service (systemd.exec(5), "Implicit Dependencies").
    for (const key of ['PrivateTmp', 'CacheDirectory', 'StateDirectory', 'LogsDirectory', 'WorkingDirectory', 'RequiresMountsFor']) {
      expect(settings.filter((l) => l.startsWith(`${key}=`))).toEqual([]);
    }
    expect(settings.filter((l) => /^(After|Requires|Wants)=.*(local-fs|\.mount|basic\.target|sysinit\.target)/.test(l))).toEqual([]);
  });

  it('exposes the unit less than before the package (systemd-analyze security --offline)', () => {
    const analyze = which('systemd-analyze');
    const out = execFileSync(analyze, ['security', '--offline=true', '--no-pager', 'systemd/hotplugd.service'], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for hotplugd\.service: ([\d.]+)/.exec(out)?.[1]);
    // 4.3 with the unit before the package (PrivateTmp, no syscall filter).
    expect(score).toBeLessThanOrEqual(3.0);
  });

  it('with --ready-after settled, sends READY=1 once the coldplug loads are done', async () => {
    const python = which('python3');
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-notify-'));
    const sock = join(dir, 'notify.sock');
    const receiver = spawn(python, ['-c', 'import socket,sys\ns=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("bound", flush=True)\nwhile True: print(s.recv(4096).decode().replace("\\n","|"), flush=True)', sock]);
    let got = '';
    receiver.stdout.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise<void>((res) => receiver.stdout.once('data', () => res()));
    const sysfs = emptySysfs();
    mkdirSync(join(sysfs, 'devices/pcspkr'));
    writeFileSync(join(sysfs, 'devices/pcspkr/uevent'), 'MODALIAS=platform:pcspkr\n');
    const daemon = startDaemon(['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--mode', 'dry-run', '--sysfs', sysfs, '--ready-after', 'settled'], { NOTIFY_SOCKET: sock });
    await daemon.waitFor((r) => r.msg === 'settled', 10000, 'settled');
    for (let i = 0; i < 100 && !got.includes('READY=1'); i++) await new Promise((res) => setTimeout(res, 50));
    daemon.proc.kill('SIGTERM');
    await daemon.exited;
    receiver.kill();
    expect(got).toMatch(/^READY=1\|STATUS=coldplug done: 1 requests$/m);
    expect(got).not.toContain('coldplug queued');
  });

  it('tells systemd READY=1 after bind and coldplug, and STOPPING=1 on SIGTERM', async () => {
    const python = which('python3');
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-notify-'));
    const sock = join(dir, 'notify.sock');
    const receiver = spawn(python, [
      '-c',
      `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); print("bound", flush=True)
while True:
  m=s.recv(4096).decode(); print(m.replace("\\n","|"), flush=True)
  if "STOPPING=1" in m: break`,
      sock,
    ]);
    let got = '';
    receiver.stdout.on('data', (d: Buffer) => (got += d.toString()));
    await new Promise<void>((res) => receiver.stdout.once('data', () => res()));
    const daemon = startDaemon(
      ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--mode', 'dry-run', '--sysfs', emptySysfs()],
      { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' },
    );
    await daemon.waitFor((r) => r.msg === 'listening', 10000, 'listening');
    for (let i = 0; i < 200 && !got.includes('WATCHDOG=1'); i++) await new Promise((res) => setTimeout(res, 50));
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
    await new Promise<void>((res) => (receiver.exitCode !== null ? res() : receiver.on('exit', () => res())));
    const lines = got.split('\n');
    expect(lines.findIndex((l) => l.startsWith('READY=1'))).toBeGreaterThan(0);
    expect(lines.some((l) => l === 'WATCHDOG=1')).toBe(true);
    expect(lines.findIndex((l) => l === 'STOPPING=1')).toBeGreaterThan(lines.findIndex((l) => l.startsWith('READY=1')));
  });
});
