/**
 * The client side against an in-process server: a root client trusts only a
 * server whose SO_PEERCRED uid is 0; settle names loads still stuck in the
 * kernel; the settle handler reports them.
 */
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { connectControl, settle } from '../../../src/control/client.js';
import { controlHandlers, type ControlContext } from '../../../src/control/handlers.js';
import { type Conn } from '../../../src/control/server.js';

let servers: Server[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

/** A server that answers every line with `reply`. */
async function answering(reply: unknown): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'hotplugd-client-')), 's');
  const server = createServer((s) => s.on('data', () => s.end(`${JSON.stringify(reply)}\n`)));
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return path;
}

describe('control client', () => {
  it('as root, refuses a control socket served by another uid; as a user, does not ask', async () => {
    const path = await answering({ ok: true });
    await expect(connectControl([path], 0, async () => 1000)).rejects.toThrow(`${path}: the control socket is served by uid 1000, not root; not trusted by a root client`);
    (await connectControl([path], 0, async () => 0)).destroy();
    (await connectControl([path], 1000, async () => 1000)).destroy();
    // The real check: this test's server runs as this process's uid.
    const real = connectControl([path], 0);
    if (process.geteuid?.() === 0) (await real).destroy();
    else await expect(real).rejects.toThrow('not trusted');
  });

  it('settle says which loads are still stuck in the kernel when it answers settled', async () => {
    const path = await answering({ ok: true, settled: true, stuck: ['pcspkr'] });
    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    expect(await settle([path], 5, err)).toBe(true);
    expect(text).toBe('hotplugd: settled; left behind by the load or install timeout, still running: pcspkr\n');
  });

  it('the settle handler reports stuck loads beside "settled"', async () => {
    const daemon = { waitSettled: async () => ({ settled: true, target: 7n }), pending: () => ({ queued: 0, stuck: ['pcspkr'] }) };
    const conn = { onClose: () => () => undefined, closed: false } as unknown as Conn;
    const reply = await controlHandlers({ daemon } as unknown as ControlContext).settle!.run({ cmd: 'settle', timeout: 1 }, conn);
    expect(reply).toMatchObject({ ok: true, settled: true, seqnum: '7', stuck: ['pcspkr'] });
  });
});
