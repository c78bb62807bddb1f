/**
 * ControlServer on an in-process socket pair per test: access from the
 * peer's credentials (injected), the connection caps (per uid, slots kept for
 * root), the per-connection rate, idle and partial-line timeouts, refused
 * connections that hold no descriptor, monitors (one per connection, ended
 * by the peer's EOF), a handler that throws, the table's dispatch.
 */
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { controlHandlers, type ControlContext } from '../../../src/control/handlers.js';
import { ControlServer, type Handler, RATE_BURST, type ServerOptions } from '../../../src/control/server.js';
import { RecordTap } from '../../../src/log.js';
import { recordingLog } from '../../support/fakes.js';

let servers: Server[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

const HANDLERS: Record<string, Handler> = {
  status: { access: 'read', run: () => ({ ok: true, status: {} }) },
  reload: { access: 'write', run: () => ({ ok: true, reloaded: true }) },
  boom: {
    access: 'read',
    run: () => {
      throw new Error('bug');
    },
  },
};

async function serve(over: Partial<ServerOptions> = {}): Promise<{ path: string; control: ControlServer; server: Server }> {
  const control = new ControlServer({ handlers: HANDLERS, log: recordingLog().log, credentials: () => ({ pid: 1, uid: 0, gid: 0 }), readAllowed: () => false, ...over });
  const path = join(mkdtempSync(join(tmpdir(), 'hotplugd-ctl-')), 's');
  // As the daemon's (sys/control-socket.ts): half-open allowed.
  const server = createServer({ allowHalfOpen: true }, control.accept);
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, control, server };
}

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `cond` every 10 ms for at most 3 s; its last value. */
async function eventually(cond: () => boolean | Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (await cond()) return true;
    await tick(10);
  }
  return cond();
}

const connections = (server: Server): Promise<number> => new Promise((resolve) => server.getConnections((_e, n) => resolve(n)));

/** A client that keeps its side open (allowHalfOpen) and never closes on its own; its reply lines and whether the server ended. */
function holder(path: string): Promise<{ s: Socket; lines: Record<string, unknown>[]; ended: () => boolean }> {
  return new Promise((resolve) => {
    const s = connect({ path, allowHalfOpen: true });
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    let ended = false;
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts.map((p) => JSON.parse(p) as Record<string, unknown>));
    });
    s.on('end', () => (ended = true));
    s.on('error', () => undefined);
    s.on('connect', () => resolve({ s, lines, ended: () => ended }));
  });
}

/** Send `lines`, collect reply lines until the server closes or `n` arrived. */
function talk(path: string, lines: string[], n: number): Promise<{ replies: Record<string, unknown>[]; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(path);
    let buf = '';
    const replies: Record<string, unknown>[] = [];
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      replies.push(...parts.map((p) => JSON.parse(p) as Record<string, unknown>));
      if (replies.length >= n) {
        s.destroy();
        resolve({ replies, closed: false });
      }
    });
    s.on('close', () => resolve({ replies, closed: true }));
    s.on('error', () => undefined);
    s.write(lines.map((l) => `${l}\n`).join(''));
  });
}

describe('ControlServer', () => {
  it('refuses a peer whose credentials cannot be read, with one line, and closes', async () => {
    const { path } = await serve({ credentials: () => undefined });
    const r = await talk(path, ['{"cmd":"status"}'], 2);
    expect(r.replies).toEqual([{ ok: false, code: 'E_DENIED', error: expect.stringContaining('could not be read') }]);
    expect(r.closed).toBe(true);
  });

  it('lets a group member read but not write; refuses anyone else at once', async () => {
    const member = await serve({ credentials: () => ({ pid: 1, uid: 1000, gid: 50 }), readAllowed: (c) => c.gid === 50 });
    const r = await talk(member.path, ['{"cmd":"status"}', '{"cmd":"reload"}'], 2);
    expect(r.replies.map((x) => x.ok)).toEqual([true, false]);
    expect(r.replies[1]).toMatchObject({ code: 'E_DENIED' });
    const other = await serve({ credentials: () => ({ pid: 1, uid: 1000, gid: 100 }), readAllowed: (c) => c.gid === 50 });
    expect((await talk(other.path, ['{"cmd":"status"}'], 2)).replies).toEqual([expect.objectContaining({ code: 'E_DENIED' })]);
  });

  it('answers a handler that throws with E_FAILED and goes on serving', async () => {
    const { path } = await serve();
    const r = await talk(path, ['{"cmd":"boom"}', '{"cmd":"status"}', '{"cmd":"__proto__"}', '{"cmd":"toString"}'], 4);
    expect(r.replies.map((x) => x.code ?? 'ok')).toEqual(['E_FAILED', 'ok', 'E_UNKNOWN_COMMAND', 'E_UNKNOWN_COMMAND']);
  });

  it('closes a connection that sends more than its rate', async () => {
    const { path, control } = await serve();
    const r = await talk(path, Array.from({ length: RATE_BURST + 100 }, () => '{"cmd":"status"}'), RATE_BURST + 100);
    expect(r.closed).toBe(true);
    expect(r.replies.at(-1)).toMatchObject({ code: 'E_RATE' });
    expect(control.refused.rate).toBe(1);
  });

  it('answers E_BUSY past the connection cap', async () => {
    const { path } = await serve({ maxConnections: 1 });
    const first = connect(path);
    await new Promise((r) => first.once('connect', r));
    await new Promise((r) => setTimeout(r, 20));
    const r = await talk(path, ['{"cmd":"status"}'], 2);
    expect(r.replies).toEqual([expect.objectContaining({ code: 'E_BUSY' })]);
    first.destroy();
  });

  it('destroys refused connections (E_DENIED, E_BUSY) whose peer never closes its side, after the grace time', async () => {
    const denied = await serve({ credentials: () => undefined, closeGraceMs: 200 });
    const peers = await Promise.all(Array.from({ length: 20 }, () => holder(denied.path)));
    expect(await eventually(() => peers.every((p) => p.ended()))).toBe(true);
    expect(peers.every((p) => p.lines[0]?.code === 'E_DENIED')).toBe(true);
    expect(await eventually(async () => (await connections(denied.server)) === 0)).toBe(true);
    const busy = await serve({ maxConnections: 1, closeGraceMs: 200 });
    const first = await holder(busy.path);
    first.s.write('{"cmd":"status"}\n');
    await eventually(() => first.lines.length === 1);
    const refused = await Promise.all(Array.from({ length: 20 }, () => holder(busy.path)));
    expect(await eventually(() => refused.every((p) => p.lines[0]?.code === 'E_BUSY'))).toBe(true);
    expect(await eventually(async () => (await connections(busy.server)) === 1)).toBe(true);
    expect(busy.control.refused.busy).toBe(20);
    for (const p of [...peers, first, ...refused]) p.s.destroy();
  });

  it('waits for the EOF of at most maxLingering refused peers; the rest are destroyed once their line is out', async () => {
    const { path, server } = await serve({ credentials: () => undefined, maxLingering: 5 });
    const peers = await Promise.all(Array.from({ length: 20 }, () => holder(path)));
    expect(await eventually(() => peers.every((p) => p.lines[0]?.code === 'E_DENIED'))).toBe(true);
    expect(await eventually(async () => (await connections(server)) === 5)).toBe(true);
    // A peer that closes its side is let go at once.
    for (const p of peers) p.s.end();
    expect(await eventually(async () => (await connections(server)) === 0)).toBe(true);
  });

  it('lets a refused client that writes at once read its refusal (no EPIPE)', async () => {
    const { path } = await serve({ credentials: () => undefined });
    for (let i = 0; i < 20; i++) {
      const r = await talk(path, ['{"cmd":"status"}'], 1);
      expect(r.replies).toEqual([expect.objectContaining({ code: 'E_DENIED' })]);
    }
  });

  it('keeps slots for root and caps each other uid', async () => {
    let who = { pid: 1, uid: 1000, gid: 1000 };
    const { path, control } = await serve({ credentials: () => who, readAllowed: () => true, maxConnections: 4, rootReserved: 2, maxPerUid: 1 });
    const open = async (uid: number): Promise<unknown> => {
      who = { pid: 1, uid, gid: uid };
      const c = await holder(path);
      c.s.write('{"cmd":"status"}\n');
      await eventually(() => c.lines.length > 0);
      return c.lines[0]?.ok === true ? 'ok' : c.lines[0]?.code;
    };
    // uid 1000 twice (over its cap), 1001 (the shared slots are full then), 1002 refused, root twice, root once more past the hard limit.
    const got = [];
    for (const uid of [1000, 1000, 1001, 1002, 0, 0, 0]) got.push(await open(uid));
    expect(got).toEqual(['ok', 'E_BUSY', 'ok', 'E_BUSY', 'ok', 'ok', 'E_BUSY']);
    expect(control.connections).toBe(4);
  });

  it("gives the daemon's own uid full access (a daemon run by a user)", async () => {
    const { path } = await serve({ credentials: () => ({ pid: 1, uid: 1000, gid: 1000 }), readAllowed: () => false, ownerUid: 1000 });
    const r = await talk(path, ['{"cmd":"status"}', '{"cmd":"reload"}'], 2);
    expect(r.replies.map((x) => x.ok)).toEqual([true, true]);
  });

  it('closes a connection idle between requests, and one whose partial line is not completed in time, but not one whose request is in progress', async () => {
    const slow: Handler = { access: 'read', run: async () => (await tick(300), { ok: true, slow: true }) };
    const { path, control } = await serve({ handlers: { ...HANDLERS, slow }, idleMs: 100, lineMs: 100 });
    const idle = await holder(path);
    idle.s.write('{"cmd":"status"}\n');
    expect(await eventually(() => idle.ended())).toBe(true);
    expect(idle.lines).toEqual([{ ok: true, status: {} }, expect.objectContaining({ code: 'E_TIMEOUT', error: expect.stringContaining('idle') })]);
    // A line dripped one byte per 20 ms: the clock runs from its first byte.
    const drip = await holder(path);
    const t = setInterval(() => drip.s.write('{'), 20);
    expect(await eventually(() => drip.ended())).toBe(true);
    clearInterval(t);
    expect(drip.lines).toEqual([expect.objectContaining({ code: 'E_TIMEOUT', error: expect.stringContaining('not complete') })]);
    // A request that takes longer than the idle time is answered.
    const busy = await holder(path);
    busy.s.write('{"cmd":"slow"}\n');
    expect(await eventually(() => busy.lines.length > 0)).toBe(true);
    expect(busy.lines[0]).toEqual({ ok: true, slow: true });
    expect(control.refused.idle).toBeGreaterThanOrEqual(2);
    busy.s.destroy();
  });

  it('serves one monitor per connection: pipelined requests behind it are dropped, records come once', async () => {
    const tap = new RecordTap();
    const handlers = controlHandlers({ tap } as unknown as ControlContext);
    const { path, control } = await serve({ handlers });
    const c = await holder(path);
    c.s.write('{"cmd":"monitor"}\n'.repeat(60) + '{"cmd":"status"}\n');
    expect(await eventually(() => c.lines.length > 0 && tap.size > 0)).toBe(true);
    await tick(50);
    tap.publish('{"msg":"one"}');
    expect(await eventually(() => c.lines.length >= 2)).toBe(true);
    await tick(50);
    expect(c.lines).toEqual([{ ok: true, monitor: true }, { msg: 'one' }]);
    expect(tap.size).toBe(1);
    expect(control.monitors).toBe(1);
    c.s.destroy();
  });

  it('ends a monitor when its peer sends EOF, without waiting for a record', async () => {
    const tap = new RecordTap();
    const { path, control } = await serve({ handlers: controlHandlers({ tap } as unknown as ControlContext) });
    const c = await holder(path);
    c.s.write('{"cmd":"monitor"}\n');
    expect(await eventually(() => c.lines.length === 1)).toBe(true);
    expect(control.monitors).toBe(1);
    c.s.end(); // half-close: the client is done
    expect(await eventually(() => control.monitors === 0 && tap.size === 0 && control.connections === 0)).toBe(true);
  });
});
