/**
 * The --metrics-listen HTTP server: address parsing, GET /metrics only, no
 * request bodies, a cap on connections, an address in use refused at once.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HotplugError } from '../../../src/errors.js';
import { CONTENT_TYPE } from '../../../src/metrics-feed.js';
import { parseListenAddress } from '../../../src/sys/listen-address.js';
import { METRICS_MAX_CONNECTIONS, type MetricsServer, startMetricsServer } from '../../../src/sys/metrics-http.js';

const source = { text: async (): Promise<string> => 'hotplugd_up 1\n', contentType: CONTENT_TYPE };
let servers: MetricsServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(host = '127.0.0.1'): Promise<{ base: string; server: MetricsServer }> {
  const server = await startMetricsServer({ host, port: 0 }, source);
  servers.push(server);
  const h = host.includes(':') ? `[${host}]` : host;
  return { base: `http://${h}:${server.address.port}`, server };
}

function usage(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(HotplugError);
    expect((e as HotplugError).code).toBe('E_USAGE');
    return (e as HotplugError).message;
  }
  throw new Error('no usage error');
}

describe('parseListenAddress', () => {
  it('takes IPv4 ADDR:PORT and bracketed IPv6 [ADDR]:PORT', () => {
    expect(parseListenAddress('127.0.0.1:9101')).toEqual({ host: '127.0.0.1', port: 9101 });
    expect(parseListenAddress('[::1]:9101')).toEqual({ host: '::1', port: 9101 });
    expect(parseListenAddress('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
  });

  it('refuses anything else with a usage error naming the flag', () => {
    for (const bad of ['9101', ':9101', 'localhost:9101', '::1:9101', '[127.0.0.1]:9101', '127.0.0.1:65536', '127.0.0.1:', '300.1.1.1:80', '[::1]', '127.0.0.1:80x', '']) {
      expect(usage(() => parseListenAddress(bad)), bad).toMatch(/^--metrics-listen/);
    }
  });
});

describe('the metrics HTTP server', () => {
  it('serves GET and HEAD /metrics in the Prometheus text format, 404 elsewhere, 405 for other methods', async () => {
    const { base } = await start();
    const ok = await fetch(`${base}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await ok.text()).toBe('hotplugd_up 1\n');
    expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/../etc`)).status).toBe(404);
    const del = await fetch(`${base}/metrics`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses a request with a body without reading it', async () => {
    const { base } = await start();
    const r = await fetch(`${base}/metrics`, { method: 'POST', body: 'x'.repeat(100_000) });
    expect(r.status).toBe(413);
  });

  it('listens on IPv6 loopback', async () => {
    const { base } = await start('::1');
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it(`closes connections past ${METRICS_MAX_CONNECTIONS} at once and keeps serving the others`, async () => {
    const { server, base } = await start();
    const open = async (): Promise<Socket> => {
      const s = connect(server.address.port, '127.0.0.1');
      sockets.push(s);
      await new Promise((r) => s.once('connect', r));
      return s;
    };
    for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) await open();
    const extra = await open();
    await new Promise((r) => extra.once('close', r)); // closed by the server, never answered
    for (const s of sockets.splice(0)) s.destroy();
    // The server still answers once the idle connections are gone.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await fetch(`${base}/metrics`).then(
        (r) => r.status,
        () => 0,
      );
    }
    expect(status).toBe(200);
  });

  it('fails at once with E_SYSTEM naming the flag and the address when the port is taken', async () => {
    const { server } = await start();
    const e = await startMetricsServer({ host: '127.0.0.1', port: server.address.port }, source).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(HotplugError);
    expect((e as HotplugError).code).toBe('E_SYSTEM');
    expect((e as HotplugError).message).toBe(`--metrics-listen 127.0.0.1:${server.address.port}: cannot listen: address already in use (EADDRINUSE)`);
  });
});
