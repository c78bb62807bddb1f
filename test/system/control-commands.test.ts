/**
 * The control socket's commands and access rules with real processes:
 * `hotplugd run` in dry-run on the shipped Debian index (fake sysfs trees;
 * the real uevent socket is opened, read-only), clients as separate
 * processes (the CLI, as root or as uid 65534) or raw sockets.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, fakeSysfs, killDaemons, NOBODY, Raw, type Ran, spawnCli, startWith, tmp } from '../support/control-helpers.js';

afterEach(killDaemons);

describe('control socket commands', () => {
  it('answers status, why, reload and settle, and streams records to several monitors', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    const sysfs = fakeSysfs(4, (i) => (i % 2 === 0 ? "platform:pcspkr" : "virtio:d00000001v00001AF4"));
    const d = await startWith(sock, [], sysfs);
    expect(lstatSync(sock).mode & 0o777).toBe(0o600);

    const st = await cli(['status', '--control', sock, '--json']);
    expect(st.status).toBe(0);
    const status = JSON.parse(st.stdout) as Record<string, unknown>;
    expect(status).toMatchObject({ phase: 'running', mode: 'dry-run', jobs: 1, settled: true, index: { kind: 'depmod', kernelRelease: 'debian-6.1.0-56-amd64' } });
    expect(status.counts).toMatchObject({ requests: 2, wouldLoad: expect.any(Number) });
    const human = await cli(['status', '--control', sock]);
    expect(human.stdout).toMatch(/^phase {5}running$/m);

    const why = await cli(['why', '--control', sock, 'platform:pcspkr']);
    expect(why.status).toBe(0);
    expect(why.stdout).toMatch(/coldplug devpath=\/devices\/bus\d+\/dev\d+ modalias=platform:pcspkr/);
    expect(why.stdout).toMatch(/would-load +pcspkr/);
    expect(why.stdout).toContain('index now: platform:pcspkr -> pcspkr: load order pcspkr');
    const never = await cli(['why', '--control', sock, '--json', 'usb:v1234p5678d0000dc00dsc00dp00ic03isc01ip01in00']);
    expect(JSON.parse(never.stdout)).toMatchObject({ reached: false, totals: { requests: 0, decisions: 0 } });
    // A device that appeared after the walk and sent no uevent: what the index would answer for its modalias now.
    mkdirSync(join(sysfs, 'devices/late'));
    writeFileSync(join(sysfs, 'devices/late/uevent'), 'MODALIAS=platform:pcspkr\n');
    const late = await cli(['why', '--control', sock, '/devices/late']);
    expect(late.stdout).toMatch(/^\/devices\/late: no uevent or coldplug request/m);
    expect(late.stdout).toContain('index now: platform:pcspkr -> pcspkr: load order pcspkr');
    // The forms udevadm info takes: the path in sysfs, and a device link (here a class entry) resolved to its devpath.
    const walked = (await cli(['why', '--control', sock, '/devices/bus0/dev0'])).stdout;
    expect(walked).toMatch(/coldplug devpath=\/devices\/bus0\/dev0/);
    expect((await cli(['why', '--control', sock, join(sysfs, 'devices/bus0/dev0')])).stdout).toBe(walked);
    mkdirSync(join(sysfs, 'class/input'), { recursive: true });
    symlinkSync('../../devices/bus0/dev0', join(sysfs, 'class/input/input7'));
    expect((await cli(['why', '--control', sock, join(sysfs, 'class/input/input7')])).stdout).toBe(walked);

    const monitors = [spawnCli(['monitor', '--control', sock, '--json']), spawnCli(['monitor', '--control', sock])];
    const rawMonitor = await Raw.open(sock);
    expect(await rawMonitor.ask({ cmd: 'monitor' })).toEqual({ ok: true, monitor: true });
    // The CLI monitors are processes starting up: wait until the daemon streams to all three.
    const probe = await Raw.open(sock);
    for (let i = 0; i < 200; i++) {
      const st = (await probe.ask({ cmd: 'status' })).status as { control: { monitors: number } };
      if (st.control.monitors === 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    probe.s.destroy();
    // The metrics through the socket count the records the log has.
    const met = await cli(['metrics', '--control', sock]);
    expect(met.status).toBe(0);
    const wouldLoad = Number(/^hotplugd_module_loads_total\{result="would-load"\} (\d+)$/m.exec(met.stdout)?.[1]);
    expect(wouldLoad).toBe(d.records.filter((r) => r.msg === 'module' && r.result === 'would-load').length);
    expect(wouldLoad).toBeGreaterThan(0);
    const reload = await cli(['reload', '--control', sock]);
    expect(reload.status).toBe(0);
    expect(reload.stdout).toMatch(/^reloaded: .*debian-6.1.0-56-amd64 \(\d+ modules; reload 1 since start\)$/m);
    expect((await cli(['settle', '--control', sock, '--timeout', '10'])).status).toBe(0);
    // The monitors saw the reload's records; stop them as Ctrl-C would.
    await d.waitFor((r) => r.msg === 'settled' && r.requests === 4, 10_000, 'the settled record after the reload');
    while (!rawMonitor.lines.some((l) => l.msg === 'settled')) await rawMonitor.next();
    await new Promise((r) => setTimeout(r, 200)); // the monitors' pipes
    for (const m of monitors) m.proc.kill('SIGINT');
    const [json, text] = (await Promise.all(monitors.map((m) => m.done))) as [Ran, Ran];
    expect(json.status).toBe(0);
    const recs = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => r.msg)).toEqual(expect.arrayContaining(['reloaded', 'coldplug', 'module', 'settled']));
    expect(text.stdout).toMatch(/^\d\d:\d\d:\d\d\.\d{3} would-load +pcspkr/m);
    rawMonitor.s.destroy();
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    expect(existsSync(sock)).toBe(false); // unlinked at exit
  });

  it('exits 111 naming the path when no daemon listens, 100 on a usage error', async () => {
    const dir = tmp();
    const r = await cli(['status', '--control', join(dir, 'nothing')]);
    expect(r.status).toBe(111);
    expect(r.stderr).toContain(join(dir, 'nothing'));
    expect((await cli(['settle', '--control', join(dir, 'x'), '--timeout', 'soon'])).status).toBe(100);
    expect((await cli(['why', '--control', join(dir, 'x')])).status).toBe(100);
    expect((await cli(['run', '--control', join(dir, 'x'), '--ready-after', 'soon'])).status).toBe(100);
  });

  it('waits for seqnums it never receives until the resync walk they cause is done; exits 1 with what is pending on timeout', async () => {
    // The kernel's seqnum is a file the test moves: 100 events "sent to another
    // network namespace" that this daemon's socket never sees.
    const sysfs = fakeSysfs(4, (i) => (i % 2 === 0 ? 'platform:pcspkr' : 'virtio:d00000001v00001AF4'));
    mkdirSync(join(sysfs, 'kernel'));
    writeFileSync(join(sysfs, 'kernel/uevent_seqnum'), '1000\n');
    const sock = join(tmp(), 'control');
    const d = await startWith(sock, [], sysfs);
    expect((await cli(['settle', '--control', sock, '--timeout', '0'])).status).toBe(0);
    writeFileSync(join(sysfs, 'kernel/uevent_seqnum'), '1100\n');
    const early = await cli(['settle', '--control', sock, '--timeout', '0']);
    expect(early.status).toBe(1);
    expect(early.stderr).toMatch(/not settled after 0 s \[E_TIMEOUT\] pending: .*"seqnum":\{"handled":"\d+","kernel":"1100"\}/);
    const late = await cli(['settle', '--control', sock, '--timeout', '30']);
    expect(late.status).toBe(0);
    expect(d.records.some((r) => r.msg === 'coldplug' && r.why === 'resync')).toBe(true);
    const sr = await cli(['status', '--control', sock, '--json']);
    expect(sr.stderr).toBe('');
    const st = JSON.parse(sr.stdout) as { uevents: { lost: number }; resyncs: number };
    // (Real uevents of other processes on this machine may add to both.)
    // A number, as every other count of status --json.
    expect(typeof st.uevents.lost).toBe('number');
    expect(st.uevents.lost).toBeGreaterThanOrEqual(100);
    expect(st.resyncs).toBeGreaterThanOrEqual(1);
  });
});

describe('control socket access', () => {
  it('refuses a non-root client for everything without --control-group, and for reload with it', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    // 0600: the kernel refuses the connection itself.
    const r1 = await cli(['status', '--control', sock], { uid: NOBODY });
    expect(r1.status).toBe(111);
    expect(r1.stderr).toContain(`${sock}: permission denied (root only, or members of the daemon's --control-group)`);
    // Denied, not asked whether the daemon runs.
    expect(r1.stderr).not.toContain('is the daemon running');
    // Made reachable by hand: SO_PEERCRED still refuses uid 65534.
    chmodSync(sock, 0o666);
    const r2 = await cli(['status', '--control', sock], { uid: NOBODY });
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/permission denied: uid 65534 is not allowed.*\[E_DENIED\]/);
  });

  it('lets members of --control-group use status and settle, not reload; the socket gets the group and 0660', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    const d = await startWith(sock, ['--control-group', String(NOBODY)]);
    const st = statSync(sock);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(NOBODY);
    expect((await cli(['status', '--control', sock], { uid: NOBODY })).status).toBe(0);
    expect((await cli(['settle', '--control', sock, '--timeout', '5'], { uid: NOBODY })).status).toBe(0);
    expect((await cli(['metrics', '--control', sock], { uid: NOBODY })).stdout).toMatch(/^hotplugd_build_info\{version="/m);
    const r = await cli(['reload', '--control', sock], { uid: NOBODY });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/"reload" changes the daemon and needs root.*\[E_DENIED\]/);
    expect(d.records.some((x) => x.msg === 'reloaded')).toBe(false);
  });

  it('lets in a member by a supplementary group, and no one outside the group, also where /proc hides the peer', async () => {
    // A procfs with no process directories (as ProtectProc=invisible shows other users' processes: not at all).
    const hidden = tmp();
    for (const e of readdirSync('/proc')) if (!/^\d+$/.test(e)) symlinkSync(join('/proc', e), join(hidden, e));
    const sock = join(tmp(), 'control');
    await startWith(sock, ['--control-group', '4242', '--procfs', hidden]);
    const as = (groups: string): Promise<Ran> =>
      new Promise((resolve) => {
        const p = spawn('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--groups', groups, process.execPath, 'dist/src/cli.js', 'status', '--control', sock]);
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (x: Buffer) => (stdout += x.toString()));
        p.stderr.on('data', (x: Buffer) => (stderr += x.toString()));
        p.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    expect((await as('4242')).status).toBe(0); // SO_PEERGROUPS: no /proc needed
    // The socket's 0660 mode refuses a non-member at connect().
    const byMode = await as('4343');
    expect(byMode.status).toBe(111);
    expect(byMode.stderr).toContain('permission denied');
    chmodSync(sock, 0o666); // past the file's check by hand: SO_PEERCRED and SO_PEERGROUPS still refuse a non-member
    const outsider = await as('4343');
    expect(outsider.status).toBe(1);
    expect(outsider.stderr).toContain('[E_DENIED]');
  });
});
