/**
 * ControlServer on an in-process socket pair per test: access from the
 * peer's credentials (injected), the connection cap, the per-connection rate,
 * a handler that throws, the table's dispatch.
 */
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer, type Handler, RATE_BURST, type ServerOptions } from '../../../src/control/server.js';
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

async function serve(over: Partial<ServerOptions> = {}): Promise<{ path: string; control: ControlServer }> {
  const control = new ControlServer({ handlers: HANDLERS, log: recordingLog().log, credentials: () => ({ pid: 1, uid: 0, gid: 0 }), readAllowed: () => false, ...over });
  const path = join(mkdtempSync(join(tmpdir(), 'hotplugd-ctl-')), 's');
  const server = createServer(control.accept);
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, control };
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
});
