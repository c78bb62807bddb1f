/**
 * `--metrics-listen ADDR:PORT`: a small HTTP server for Prometheus scrapes.
 * GET (and HEAD) /metrics answers the exposition; /livez and /readyz answer
 * 200 or 503 from the daemon's state (probes: a container runtime's check
 * costs one HTTP request, not a process); any other path 404, any other
 * method 405, a request with a body 413. Bounded: one request per
 * connection (every answer closes it; Prometheus never pipelines, and
 * pipelined requests would otherwise queue answers without limit), headers
 * within 2 s, at most 8 KiB of them, 16 connections at once and 4 from one
 * remote address (more are closed unanswered), a connection idle for 10 s
 * closed. One rendering of the exposition is served for 1 s, to every scrape
 * in that time. Nothing a client sends is buffered.
 * Imported only when --metrics-listen is given (node:http stays off the boot path).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { formatAddress, type ListenAddress } from './listen-address.js';

export const METRICS_MAX_CONNECTIONS = 16;
/** Connections at once from one remote address, under METRICS_MAX_CONNECTIONS. */
export const METRICS_MAX_PER_ADDRESS = 4;
/** How long one rendering of the exposition is served (ms). */
export const METRICS_CACHE_MS = 1000;
/** The request's headers must be complete this long after the connection opens (ms). */
export const METRICS_HEADERS_TIMEOUT_MS = 2000;

export interface MetricsServerOptions {
  /** The flag named in errors (default --metrics-listen). */
  flag?: string;
  /** How long one rendering is served (default METRICS_CACHE_MS; 0: each scrape renders). */
  cacheMs?: number;
  /** A monotonic clock in ms (default performance.now; tests). */
  now?: () => number;
  /** What /livez and /readyz answer (without it, both 404). */
  health?: HealthSource;
}

/**
 * The daemon's state for probes: each returns undefined when the answer is
 * yes, otherwise why not (the 503's body, which kubelet shows in the pod's
 * events). Cheap and synchronous: a probe never renders the metrics.
 */
export interface HealthSource {
  /** /livez: the process serves (its event loop turns) and is not stopping. */
  live(): string | undefined;
  /** /readyz: the daemon did its start-up work (see run.ts) and is running. */
  ready(): string | undefined;
}

export interface MetricsServer {
  /** The address bound (the real port when 0 was asked). */
  address: ListenAddress;
  close(): Promise<void>;
}

export interface MetricsSource {
  text(): Promise<string>;
  contentType: string;
}

function answer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * `render` shared: a call within `ms` of the rendering in use (in flight or
 * done) gets that rendering's promise, so concurrent and repeated scrapes
 * cost one rendering a window. A rendering that fails is not served again.
 */
export function cachedText(render: () => Promise<string>, ms: number, now: () => number = () => performance.now()): () => Promise<string> {
  let last: { at: number; text: Promise<string> } | undefined;
  return () => {
    const t = now();
    if (last === undefined || !(t - last.at < ms && t >= last.at)) {
      const entry = { at: t, text: render() };
      last = entry;
      entry.text.catch(() => {
        if (last === entry) last = undefined;
      });
    }
    return last.text;
  };
}

/** The probe paths and the question each asks. */
const PROBES = new Map<string, keyof HealthSource>([['/livez', 'live'], ['/readyz', 'ready']]);

async function serve(text: () => Promise<string>, contentType: string, health: HealthSource | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0] ?? '';
  if (hasBody(req)) {
    // Never read: the connection is closed after the answer.
    res.shouldKeepAlive = false;
    return answer(res, 413, 'request bodies are not accepted\n', { Connection: 'close' });
  }
  const probe = health === undefined ? undefined : PROBES.get(path);
  if (path !== '/metrics' && probe === undefined) return answer(res, 404, 'not found: the metrics are at /metrics\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  if (probe !== undefined) {
    const why = health![probe]();
    const body = why === undefined ? 'ok\n' : `${why}\n`;
    res.writeHead(why === undefined ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    return void res.end(req.method === 'HEAD' ? undefined : body);
  }
  let body: string;
  try {
    body = await text();
  } catch (e) {
    return answer(res, 500, `${printable(`metrics unavailable: ${(e as Error).message}`)}\n`);
  }
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Why listen(2) failed, in words an administrator can act on. */
function listenProblem(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'EADDRINUSE':
      return 'address already in use (EADDRINUSE)';
    case 'EADDRNOTAVAIL':
      return 'no such address on this machine (EADDRNOTAVAIL)';
    case 'EACCES':
      return 'permission denied (EACCES; ports below 1024 need CAP_NET_BIND_SERVICE)';
    case 'EAFNOSUPPORT':
    case 'EPERM':
      return `${e.code}: the address family is not allowed here (systemd RestrictAddressFamilies=, IPAddressDeny=?)`;
    default:
      return e.code ?? e.message;
  }
}

/**
 * Closes a connection past `max` from one remote address, before it is read:
 * a client that holds connections open (slow headers, reconnecting at each
 * timeout) can take at most `max` of the server's, not all of them.
 */
function capPerAddress(server: Server, max: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const key = socket.remoteAddress;
    if (key === undefined) return void socket.destroy(); // already gone
    const n = open.get(key) ?? 0;
    if (n >= max) return void socket.destroy();
    open.set(key, n + 1);
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1;
      if (left === 0) open.delete(key);
      else open.set(key, left);
    });
  });
}

/** Listen on `addr`; rejects with E_SYSTEM (address in use, not available, ...) naming the flag. */
export function startMetricsServer(addr: ListenAddress, source: MetricsSource, opts: MetricsServerOptions = {}): Promise<MetricsServer> {
  const flag = opts.flag ?? '--metrics-listen';
  const text = cachedText(() => source.text(), opts.cacheMs ?? METRICS_CACHE_MS, opts.now);
  const served = new WeakSet<Socket>();
  // A request always arrives whole with its headers (bodies are refused
  // unread), so the request timeout adds little to the headers timeout.
  const server: Server = createServer(
    { maxHeaderSize: 8192, headersTimeout: METRICS_HEADERS_TIMEOUT_MS, requestTimeout: 5000, keepAliveTimeout: 5000, connectionsCheckingInterval: 500 },
    (req, res) => {
      // One request a connection. HTTP/1.1 requests after the first Node
      // answers itself with 503 (maxRequestsPerSocket), unrendered; this does
      // the same for HTTP/1.0 keep-alive. Those answers are never sent: the
      // first answer closes the connection.
      if (served.has(req.socket)) return answer(res, 503, 'one request per connection\n');
      served.add(req.socket);
      res.shouldKeepAlive = false;
      serve(text, source.contentType, opts.health, req, res).catch(() => res.destroy());
    },
  );
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.maxRequestsPerSocket = 1;
  server.maxHeadersCount = 64;
  // An answer the client does not read, or a connection kept idle, is dropped.
  server.setTimeout(10_000);
  capPerAddress(server, METRICS_MAX_PER_ADDRESS);
  server.on('clientError', (_e, socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(new HotplugError('E_SYSTEM', `${flag} ${formatAddress(addr)}: cannot listen: ${listenProblem(e)}`, { cause: e }));
    });
    server.listen({ host: addr.host, port: addr.port, exclusive: true }, () => {
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : addr.port;
      // The daemon does not stay up for a scraper; a later server error must not end it.
      server.unref();
      server.on('error', () => undefined);
      resolve({
        address: { host: addr.host, port },
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
