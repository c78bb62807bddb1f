/**
 * The control socket's bounds and start-up rules with real processes:
 * garbage, oversized lines, a monitor that never reads during a storm with
 * 100 concurrent status calls, refused connections that hold no descriptor,
 * live/stale/non-socket paths, an unsafe parent directory, the non-root
 * fallback and a user's own daemon; settle after real uevents behind
 * HOTPLUGD_TEST_REAL_UEVENTS.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, daemons, fakeSysfs, INDEX, killDaemons, NOBODY, Raw, type Ran, startWith, tmp } from '../support/control-helpers.js';
import { emptySysfs, itWithRealUevents, requireRoot, startDaemon } from '../support/daemon-helpers.js';

afterEach(killDaemons);

describe('control socket bounds', () => {
  it('answers garbage and unknown commands with an error and goes on; closes on an oversized line', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    const c = await Raw.open(sock);
    c.s.write('garbage\n');
    expect(await c.next()).toMatchObject({ ok: false, code: 'E_PROTOCOL' });
    expect(await c.ask({ cmd: 'format-disk' })).toMatchObject({ ok: false, code: 'E_UNKNOWN_COMMAND' });
    expect(await c.ask({ cmd: 'status' })).toMatchObject({ ok: true });
    c.s.write(Buffer.alloc(70 * 1024, 0x61));
    expect(await c.next()).toMatchObject({ ok: false, code: 'E_PROTOCOL', error: expect.stringContaining('longer than 65536') });
    await c.closedNow();
    expect((await cli(['status', '--control', sock])).status).toBe(0);
    // A client that sends its request and shuts down its side still gets the answer (a reload takes a walk).
    const answer = await new Promise<string>((resolve) => {
      const h = connect({ path: sock, allowHalfOpen: true }, () => h.end('{"cmd":"reload"}\n'));
      let got = '';
      h.on('data', (x: Buffer) => (got += x.toString()));
      h.on('close', () => resolve(got));
    });
    expect(JSON.parse(answer)).toMatchObject({ ok: true, reloaded: true });
  });

  it('drops a monitor that never reads, keeps writing every record, and answers 100 concurrent status calls during the storm', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    // 3,000 distinct modaliases that match nothing: one debug record each per walk.
    const sysfs = fakeSysfs(3000, (i) => `nomatch:dev${i}`);
    const d = await startWith(sock, ['--log-level', 'debug'], sysfs);
    const stuck = await Raw.open(sock);
    stuck.s.write(`${JSON.stringify({ cmd: 'monitor' })}\n`);
    stuck.s.pause(); // never reads
    await new Promise((r) => setTimeout(r, 100));
    const root = await Raw.open(sock);
    let dropped = 0;
    let reloads = 0;
    for (; reloads < 12 && dropped === 0; ) {
      const asks = await Promise.all(
        Array.from({ length: 100 }, async () => {
          const c = await Raw.open(sock);
          const r = await c.ask({ cmd: 'status' });
          c.s.destroy();
          return r;
        }).concat([root.ask({ cmd: 'reload' })]),
      );
      reloads++;
      expect(asks.every((a) => a.ok === true)).toBe(true);
      const st = (await root.ask({ cmd: 'status' })).status as { control: { refused: { slow: number } } };
      dropped = st.control.refused.slow;
    }
    expect(dropped).toBe(1);
    // Reading at last, the dropped monitor finds records, then one line saying why it was dropped.
    stuck.s.resume();
    await stuck.closedNow();
    expect(stuck.lines[0]).toEqual({ ok: true, monitor: true });
    expect(stuck.lines.at(-1)).toMatchObject({ ok: false, code: 'E_DROPPED', error: expect.stringContaining('monitor dropped') });
    expect(await root.ask({ cmd: 'settle', timeout: 30 })).toMatchObject({ ok: true });
    await d.waitFor((r) => r.msg === 'coldplug' && r.why === 'reload' && d.records.filter((x) => x.msg === 'coldplug').length === reloads + 1, 10_000, 'every walk');
    // Every request of every walk was written: 3,000 per walk.
    const perWalk = d.records.filter((r) => r.msg === 'no module for modalias').length;
    expect(perWalk).toBe(3000 * (reloads + 1));
    stuck.s.destroy();
    root.s.destroy();
  });

  it('holds no descriptor for refused connections whose peers never close', async () => {
    const sock = join(tmp(), 'control');
    const d = await startWith(sock);
    const fds = (): number => readdirSync(`/proc/${d.proc.pid}/fd`).length;
    const before = fds();
    chmodSync(sock, 0o666); // reachable by uid 65534, refused by SO_PEERCRED
    // 200 connections as uid 65534, each reads its refusal and then keeps its side open.
    const script = `const net = require('net'); const socks = []; let n = 0;
      const one = () => { const s = net.connect({ path: ${JSON.stringify(sock)}, allowHalfOpen: true }); socks.push(s);
        s.on('error', () => {}); s.once('data', () => { if (++n === 200) console.log('refused 200'); else one(); }); };
      one(); setTimeout(() => process.exit(0), 30000);`;
    const peer = spawn(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => peer.stdout.on('data', () => resolve()));
    let now = fds();
    for (let i = 0; i < 100 && now > before; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = fds();
    }
    peer.kill('SIGKILL');
    expect(now).toBeLessThanOrEqual(before);
    const st = (await Raw.open(sock).then((c) => c.ask({ cmd: 'status' }))).status as { control: { refused: { denied: number } } };
    expect(st.control.refused.denied).toBe(200);
  });

  it('refuses a --control directory that others may write, naming the problem', async () => {
    const dir = tmp();
    chmodSync(dir, 0o777);
    const d = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs(), '--control', join(dir, 'control')]);
    daemons.push(d);
    expect(await d.exited).toBe(111);
    expect(d.stderr()).toContain(`${dir}: control socket directory is writable by its group or others and not sticky (mode 777); refused`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("gives a user's own daemon to that user, and a root client does not trust it", async () => {
    const xdg = tmp();
    chownSync(xdg, NOBODY, NOBODY);
    const sock = join(xdg, 'hotplugd', 'control');
    const d = startDaemon(['--demo', '--sysfs', emptySysfs(), '--control', sock], {}, { uid: NOBODY, gid: NOBODY });
    daemons.push(d);
    await d.waitFor((r) => r.msg === 'control socket', 15_000, 'the control socket');
    expect(lstatSync(join(xdg, 'hotplugd')).mode & 0o777).toBe(0o755);
    const own = await cli(['status', '--control', sock], { uid: NOBODY });
    expect(own.status).toBe(0);
    const reload = await cli(['reload', '--control', sock], { uid: NOBODY });
    expect(reload.status).toBe(0);
    const asRoot = await cli(['status', '--control', sock]);
    expect(asRoot.status).toBe(111);
    expect(asRoot.stderr).toContain(`${sock}: the control socket is served by uid ${NOBODY}, not root; not trusted by a root client`);
  });

  it('refuses to start on a path a live daemon holds, replaces a stale socket, never removes a file that is not a socket', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock);
    const second = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs(), '--control', sock]);
    daemons.push(second);
    expect(await second.exited).toBe(111);
    expect(second.stderr()).toContain(`${sock}: a running daemon already listens on this control socket`);
    expect((await cli(['status', '--control', sock])).status).toBe(0); // the first one still answers

    const stale = join(dir, 'stale');
    await new Promise<void>((resolve) => {
      const p = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
      p.on('exit', () => resolve());
    });
    expect(lstatSync(stale).isSocket()).toBe(true);
    await startWith(stale);
    expect((await cli(['status', '--control', stale])).status).toBe(0);

    const file = join(dir, 'file');
    writeFileSync(file, 'keep me');
    const third = startDaemon([...INDEX, '--mode', 'dry-run', '--sysfs', emptySysfs(), '--control', file]);
    daemons.push(third);
    expect(await third.exited).toBe(111);
    expect(third.stderr()).toContain(`${file}: control socket path exists and is not a socket; not removed`);
    expect(lstatSync(file).isFile()).toBe(true);
  });

  it('runs as non-root without a control socket after one warning, or on $XDG_RUNTIME_DIR', async () => {
    // As uid 65534: /run/hotplugd is not writable for it.
    const xdg = tmp();
    chownSync(xdg, NOBODY, NOBODY);
    const run = (env: Record<string, string>): Promise<Ran> =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, ['dist/src/cli.js', 'run', '--demo', '--log-format', 'json', '--sysfs', emptySysfs()], {
          uid: NOBODY,
          gid: NOBODY,
          env: { ...process.env, XDG_RUNTIME_DIR: '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        p.stdout.on('data', (x: Buffer) => {
          stdout += x.toString();
          if (stdout.includes('"msg":"demo:')) p.kill('SIGTERM');
        });
        let stderr = '';
        p.stderr.on('data', (x: Buffer) => (stderr += x.toString()));
        p.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const without = await run({});
    expect(without.status).toBe(0);
    expect(without.stdout.split('\n').filter((l) => l.includes('no control socket'))).toHaveLength(1);
    // The unforced receive buffer: said once, with the errno's name and what it needs.
    const buffer = without.stdout.split('\n').filter((l) => l.includes('not forced'));
    expect(buffer).toHaveLength(1);
    expect(buffer[0]).toContain('receive buffer not forced (EPERM: forcing needs CAP_NET_ADMIN)');
    const withXdg = await run({ XDG_RUNTIME_DIR: xdg });
    expect(withXdg.status).toBe(0);
    expect(withXdg.stdout).toContain(`"path":"${join(xdg, 'hotplugd/control')}"`);
  });
});

describe('settle with real uevents', () => {
  itWithRealUevents('returns only once every uevent written before the call was handled', async () => {
    requireRoot();
    // No devices to walk, but the kernel's real uevent_seqnum.
    const sysfs = emptySysfs();
    symlinkSync('/sys/kernel', join(sysfs, 'kernel'));
    const dir = tmp();
    const sock = join(dir, 'control');
    await startWith(sock, [], sysfs, 'coldplug');
    const files = readdirSync('/sys/bus/platform/devices').map((x) => join('/sys/bus/platform/devices', x, 'uevent')).filter((f) => existsSync(f));
    const c = await Raw.open(sock);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) for (const f of files) writeFileSync(f, 'add');
      const r = await c.ask({ cmd: 'settle', timeout: 60 });
      // The daemon's state at the moment it answered: nothing queued or in
      // flight, every seqnum up to the one read at the call handled.
      expect(r).toMatchObject({ ok: true, settled: true, state: { queued: 0, inFlight: [], walking: false, resyncScheduled: false } });
      const state = r.state as { seqnum: { handled: string } };
      expect(BigInt(state.seqnum.handled)).toBeGreaterThanOrEqual(BigInt(r.seqnum as string));
      // Every uevent written before the call was received (a 64 MiB buffer: none lost here).
      const st = (await c.ask({ cmd: 'status' })).status as { uevents: { received: number } };
      expect(st.uevents.received).toBeGreaterThanOrEqual(files.length * 20 * (round + 1));
    }
    c.s.destroy();
  });
});
