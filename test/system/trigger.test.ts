/**
 * `hotplugd trigger` as a process: refused writes for a user who is not root
 * (run under uid 65534 on fake trees), and, where the machine opts in
 * (HOTPLUGD_TEST_REAL_UEVENTS=1), on this machine's /sys with the daemon
 * listening: the kernel's uevents reach it and are handled.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { emptySysfs, killLeftover, itWithRealUevents, requireRoot, type Running, startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

function trigger(args: string[], uid?: number): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'trigger', ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    killSignal: 'SIGKILL',
    ...(uid !== undefined ? { uid, gid: uid } : {}),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** platform/a and platform/b, root's files (0644), readable by everyone. */
function tree(): string {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-trigger-'));
  chmodSync(root, 0o755);
  for (const d of ['a', 'b']) {
    mkdirSync(join(root, 'devices/platform', d), { recursive: true });
    writeFileSync(join(root, 'devices/platform', d, 'uevent'), '');
  }
  return root;
}

let daemon: Running | undefined;
afterEach(async () => {
  await killLeftover(daemon);
  daemon = undefined;
});

describe('hotplugd trigger', () => {
  it("takes udevadm's --subsystem-match, and says so, exit 1, when no device has the subsystem asked for", () => {
    const root = tree();
    mkdirSync(join(root, 'bus/platform'), { recursive: true });
    for (const d of ['a', 'b']) symlinkSync('../../../bus/platform', join(root, 'devices/platform', d, 'subsystem'));
    const hit = trigger(['--sysfs', root, '--subsystem-match', 'platform', '--dry-run']);
    expect(hit.status).toBe(0);
    expect(hit.stdout.split('\n').filter(Boolean)).toEqual([join(root, 'devices/platform/a/uevent'), join(root, 'devices/platform/b/uevent')]);
    const miss = trigger(['--sysfs', root, '--subsystem', 'pcii', '--dry-run']);
    expect(miss.status).toBe(1);
    expect(miss.stderr).toContain(`hotplugd: no device of subsystem pcii under ${root}/devices (subsystems here: platform)\n`);
  });

  it('exits 111 saying it needs root when a user may not write the first uevent file', (ctx) => {
    ctx.skip(!isRoot, 'needs root: it runs the command as uid 65534 against files root made');
    const root = tree();
    const r = trigger(['--sysfs', root], NOBODY);
    expect(r.status).toBe(111);
    expect(r.stderr).toBe(`hotplugd: ${join(root, 'devices/platform/a/uevent')}: cannot write "add" (EACCES): writing uevent files needs root [E_SYSTEM]\n`);
    expect(readFileSync(join(root, 'devices/platform/a/uevent'), 'utf8')).toBe('');
  });

  it('exits 1 naming a write that failed after others succeeded', (ctx) => {
    ctx.skip(!isRoot, 'needs root: it chowns a uevent file to uid 65534');
    const root = tree();
    chownSync(join(root, 'devices/platform/a/uevent'), NOBODY, NOBODY);
    const r = trigger(['--sysfs', root], NOBODY);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('trigger: "add" written to 1 uevent file, 1 failed (EACCES 1)\n');
    expect(r.stderr).toBe(`hotplugd: ${join(root, 'devices/platform/b/uevent')}: not written (EACCES)\n`);
    expect(readFileSync(join(root, 'devices/platform/a/uevent'), 'utf8')).toBe('add\n');
  });

  it('exits 100 for an unknown flag', () => {
    expect(trigger(['--no-such-flag']).status).toBe(100);
  });

  it('with --settle, writes, then waits for the daemon; 111 when no daemon listens', async () => {
    const root = tree();
    const sock = join(mkdtempSync(join(tmpdir(), 'hotplugd-trigger-sock-')), 'control');
    daemon = startDaemon(['--mode', 'dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--sysfs', emptySysfs(), '--control', sock]);
    await daemon.waitFor((r) => r.msg === 'settled' || r.msg === 'coldplug', 20_000, 'start-up');
    const r = trigger(['--sysfs', root, '--settle', '--timeout', '10', '--control', sock]);
    expect(r).toMatchObject({ status: 0, stdout: 'trigger: "add" written to 2 uevent files\n', stderr: '' });
    expect(readFileSync(join(root, 'devices/platform/a/uevent'), 'utf8')).toBe('add\n');
    const none = trigger(['--sysfs', root, '--settle', '--control', join(root, 'no-daemon')]);
    expect(none.status).toBe(111);
    expect(none.stderr).toContain(join(root, 'no-daemon'));
  });

  itWithRealUevents('makes the kernel announce the platform devices again; with --settle it returns after the daemon handled them', async () => {
    requireRoot();
    const sock = join(mkdtempSync(join(tmpdir(), 'hotplugd-trigger-sock-')), 'control');
    daemon = startDaemon(['--mode', 'dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--sysfs', emptySysfs(), '--control', sock]);
    await daemon.waitFor((r) => r.msg === 'settled' || r.msg === 'coldplug', 20_000, 'start-up');
    const r = trigger(['--subsystem', 'platform', '--verbose', '--settle', '--timeout', '15', '--control', sock]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('/sys/devices/platform/pcspkr/uevent\n');
    // Settled means handled: the record is there when trigger returns (read what the pipe holds, then look).
    await new Promise((res) => setTimeout(res, 100));
    const rec = daemon.records.find((x) => x.msg === 'module' && x.module === 'pcspkr');
    expect(rec).toMatchObject({ origin: 'uevent', devpath: '/devices/platform/pcspkr', result: 'would-load' });
  });
});
