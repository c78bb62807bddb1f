/**
 * The --metrics-listen HTTP server: address parsing, GET /metrics only, no
 * request bodies, one request per connection, one rendering shared a second,
 * caps on connections (in all and per remote address), an address in use
 * refused at once.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HotplugError } from '../../../src/errors.js';
import { CONTENT_TYPE } from '../../../src/metrics-feed.js';
import { parseListenAddress } from '../../../src/sys/listen-address.js';
import {
  cachedText,
  METRICS_CACHE_MS,
  METRICS_MAX_CONNECTIONS,
  METRICS_MAX_PER_ADDRESS,
  type MetricsServer,
  type MetricsServerOptions,
  startMetricsServer,
} from '../../../src/sys/metrics-http.js';

const source = { text: async (): Promise<string> => 'hotplugd_up 1\n', contentType: CONTENT_TYPE };
let servers: MetricsServer[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(host = '127.0.0.1', opts: MetricsServerOptions & { source?: typeof source } = {}): Promise<{ base: string; server: MetricsServer }> {
  const server = await startMetricsServer({ host, port: 0 }, opts.source ?? source, opts);
  servers.push(server);
  const h = host.includes(':') ? `[${host}]` : host;
  return { base: `http://${h}:${server.address.port}`, server };
}

/** A connection to `port` from `localAddress` (any 127.x.y.z is this host's), once connected. */
async function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', localAddress });
  sockets.push(s);
  await new Promise((r) => s.once('connect', r));
  return s;
}

/** Everything the server sends on `s` until it closes the connection. */
function readAll(s: Socket): Promise<string> {
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  return new Promise((r) => s.once('close', () => r(got)));
}

/** The status of GET /metrics sent from `localAddress`, 0 when the connection is closed unanswered. */
function statusFrom(port: number, localAddress: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', localAddress, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** A source that counts its renderings and names each in its text. */
function counting(): { source: typeof source; renders: () => number } {
  let n = 0;
  return { source: { text: async () => `hotplugd_render ${++n}\n`, contentType: CONTENT_TYPE }, renders: () => n };
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

  it('answers /livez and /readyz from the health source: 200 ok, or 503 with the reason; HEAD too; never renders the metrics', async () => {
    const c = counting();
    const state: { live?: string; ready?: string } = { ready: 'not ready: the start-up coldplug is not done' };
    const { base } = await start('127.0.0.1', { source: c.source, health: { live: () => state.live, ready: () => state.ready } });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe('not ready: the start-up coldplug is not done\n');
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    state.ready = undefined;
    const ok = await fetch(`${base}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('ok\n');
    expect((await fetch(`${base}/readyz?verbose`)).status).toBe(200);
    const head = await fetch(`${base}/readyz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    state.live = 'stopping';
    expect((await fetch(`${base}/livez`)).status).toBe(503);
    expect((await fetch(`${base}/readyz`, { method: 'POST' })).status).toBe(405);
    // Only the two probe paths: not names an object has anyway.
    for (const path of ['/constructor', '/__proto__', '/toString', '/healthz']) expect((await fetch(`${base}${path}`)).status, path).toBe(404);
    expect(c.renders()).toBe(0);
  });

  it('has no probe paths without a health source', async () => {
    const { base } = await start();
    expect((await fetch(`${base}/readyz`)).status).toBe(404);
    expect((await fetch(`${base}/livez`)).status).toBe(404);
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

  it('answers one request per connection and closes it: pipelined requests are never answered or rendered', async () => {
    const { source: src, renders } = counting();
    const { server } = await start('127.0.0.1', { source: src, cacheMs: 0 });
    for (const request of ['GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n']) {
      const s = await open(server.address.port);
      const got = readAll(s);
      s.write(request.repeat(200));
      const text = await got;
      expect(text.match(/^HTTP\/1\.1 \d+/gm), request).toEqual(['HTTP/1.1 200']);
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
    }
    expect(renders()).toBe(2);
  });

  it(`renders once for the scrapes within ${METRICS_CACHE_MS} ms, concurrent or not, and again after`, async () => {
    const { source: src, renders } = counting();
    let clock = 5000;
    const { base } = await start('127.0.0.1', { source: src, now: () => clock });
    const first = await Promise.all([1, 2, 3, 4].map(async () => (await fetch(`${base}/metrics`)).text()));
    expect(first).toEqual(Array(4).fill('hotplugd_render 1\n'));
    clock += METRICS_CACHE_MS - 1;
    expect(await (await fetch(`${base}/metrics`)).text()).toBe('hotplugd_render 1\n');
    clock += 1;
    expect(await (await fetch(`${base}/metrics`)).text()).toBe('hotplugd_render 2\n');
    expect(renders()).toBe(2);
  });

  it('does not serve a failed rendering again', async () => {
    let n = 0;
    const text = cachedText(async () => (++n === 1 ? Promise.reject(new Error('boom')) : `ok ${n}`), 1000, () => 0);
    await expect(text()).rejects.toThrow('boom');
    expect(await text()).toBe('ok 2');
    expect(await text()).toBe('ok 2');
    expect(n).toBe(2);
  });

  it(`closes a connection past ${METRICS_MAX_PER_ADDRESS} from one address unanswered, and serves another address`, async () => {
    const { server } = await start();
    const port = server.address.port;
    const held: Socket[] = [];
    for (let i = 0; i < METRICS_MAX_PER_ADDRESS; i++) held.push(await open(port, '127.0.0.2'));
    const extra = await open(port, '127.0.0.2');
    const got = readAll(extra);
    extra.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await got).toBe(''); // closed, never answered
    expect(await statusFrom(port, '127.0.0.3')).toBe(200);
    // The address's count goes down as its connections close.
    held[0]!.destroy();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) status = await statusFrom(port, '127.0.0.2');
    expect(status).toBe(200);
  });

  it(`closes connections past ${METRICS_MAX_CONNECTIONS} at once and keeps serving the others`, async () => {
    const { server, base } = await start();
    const port = server.address.port;
    for (let i = 0; i < METRICS_MAX_CONNECTIONS; i++) await open(port, `127.0.1.${1 + Math.floor(i / METRICS_MAX_PER_ADDRESS)}`);
    const extra = await open(port, '127.0.2.1');
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
