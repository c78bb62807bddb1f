/**
 * `--metrics-listen ADDR:PORT`: a small HTTP server for Prometheus scrapes.
 * GET (and HEAD) /metrics answers the exposition; any other path 404, any
 * other method 405, a request with a body 413. Bounded: headers must arrive
 * within 5 s and the whole request within 10 s, at most 8 KiB of headers, 16
 * connections at once (more are refused by the server), idle keep-alive
 * connections closed after 5 s. Nothing a client sends is buffered.
 * Imported only when --metrics-listen is given (node:http stays off the boot path).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HotplugError } from '../errors.js';
import { formatAddress, type ListenAddress } from './listen-address.js';

export const METRICS_MAX_CONNECTIONS = 16;

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

async function serve(source: MetricsSource, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (hasBody(req)) {
    // Never read: the connection is closed after the answer.
    res.shouldKeepAlive = false;
    return answer(res, 413, 'request bodies are not accepted\n', { Connection: 'close' });
  }
  if (path !== '/metrics') return answer(res, 404, 'not found: the metrics are at /metrics\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  let text: string;
  try {
    text = await source.text();
  } catch (e) {
    return answer(res, 500, `metrics unavailable: ${(e as Error).message}\n`);
  }
  res.writeHead(200, { 'Content-Type': source.contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(req.method === 'HEAD' ? undefined : text);
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

/** Listen on `addr`; rejects with E_SYSTEM (address in use, not available, ...) naming the flag. */
export function startMetricsServer(addr: ListenAddress, source: MetricsSource, flag = '--metrics-listen'): Promise<MetricsServer> {
  const server: Server = createServer({ maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 }, (req, res) => {
    serve(source, req, res).catch(() => res.destroy());
  });
  server.maxConnections = METRICS_MAX_CONNECTIONS;
  server.maxHeadersCount = 64;
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
