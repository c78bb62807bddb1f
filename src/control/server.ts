/**
 * The control socket's connections: who may ask what, bounded input and
 * output, and dispatch through a table of handlers (handlers.ts). Limits:
 * - at most MAX_CONNECTIONS at once (the unit's LimitNOFILE=256; the daemon
 *   itself needs under 100 descriptors: 128 clients leave room), one more is
 *   answered E_BUSY and closed;
 * - a request line over MAX_LINE (64 KiB): error reply, connection closed;
 *   invalid JSON, an unknown command: error reply, connection kept;
 * - RATE_PER_SECOND requests per connection (burst RATE_BURST): over it,
 *   E_RATE and closed; requests on one connection are served one at a time
 *   and at most MAX_PENDING lines may wait (a client pipelining more is over
 *   its rate);
 * - a client that does not read: when its unsent output passes
 *   MAX_WRITE_BUFFER it is dropped (a monitor gets one last line saying so).
 * Nothing a client does throws into the daemon: every handler call is
 * caught, every socket error ends only that connection.
 */
import { type Socket } from 'node:net';
import { type Log } from '../core/queue.js';
import { type PeerCred } from '../sys/peercred.js';
import { errorReply, isReply, LineSplitter, MAX_LINE, parseRequest, RateLimit, type Reply, type Request } from './protocol.js';

export const MAX_CONNECTIONS = 128;
export const RATE_PER_SECOND = 1000;
export const RATE_BURST = 2000;
export const MAX_PENDING = 64;
export const MAX_WRITE_BUFFER = 1024 * 1024;

/** read: status, settle, monitor, why, metrics (root and --control-group); write: reload, trigger (root only). */
export type Access = 'read' | 'write';

/** One connected client, as handlers see it. */
export interface Conn {
  readonly cred: PeerCred;
  /** Send one object as a line; false when the client was dropped for not reading. */
  send(obj: unknown): boolean;
  /** Send an already serialized JSON line (monitor records). */
  sendLine(line: string): boolean;
  /** From now on the connection only streams (no more requests are read). */
  stream(onClose: () => void): void;
  /** Call `fn` once when the connection closes (a settle waiter stops waiting); returns how to cancel that. */
  onClose(fn: () => void): () => void;
  /** Drop the connection with a last error line (a monitor too slow to read). */
  drop(reply: Reply): void;
  readonly closed: boolean;
}

export interface Handler {
  access: Access;
  run(req: Request, conn: Conn): Promise<Reply> | Reply;
}

export interface ServerOptions {
  handlers: Readonly<Record<string, Handler>>;
  log: Log;
  /** The peer's credentials (SO_PEERCRED), undefined when unreadable. */
  credentials: (s: Socket) => PeerCred | undefined;
  /** Whether a non-root peer may use read commands (--control-group). */
  readAllowed: (cred: PeerCred) => boolean;
  now?: () => number;
  maxConnections?: number;
  maxWriteBuffer?: number;
}

export class ControlServer {
  private readonly conns = new Set<Socket>();
  /** Connections refused or dropped, by reason (status, tests). */
  readonly refused = { busy: 0, denied: 0, oversize: 0, rate: 0, slow: 0 };
  private stopping = false;
  /** Connections streaming records now (monitor). */
  monitors = 0;

  constructor(private readonly opts: ServerOptions) {}

  get connections(): number {
    return this.conns.size;
  }

  /** net.Server's connection listener. */
  accept = (socket: Socket): void => {
    socket.on('error', () => socket.destroy());
    if (this.stopping) return void socket.destroy();
    if (this.conns.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS)) {
      this.refused.busy++;
      socket.end(line(errorReply('E_BUSY', `too many control connections (at most ${this.opts.maxConnections ?? MAX_CONNECTIONS})`)));
      return;
    }
    const cred = this.opts.credentials(socket);
    const root = cred?.uid === 0;
    if (cred === undefined || !(root || this.opts.readAllowed(cred))) {
      this.refused.denied++;
      const why = cred === undefined ? "the peer's credentials could not be read" : `uid ${cred.uid} is not allowed (root, or a member of the control group)`;
      this.opts.log.debug({ uid: cred?.uid, pid: cred?.pid }, 'control connection refused');
      socket.end(line(errorReply('E_DENIED', `permission denied: ${why}`)));
      return;
    }
    this.conns.add(socket);
    socket.on('close', () => this.conns.delete(socket));
    this.serve(socket, cred, root);
  };

  /** Close every connection (the daemon stops). */
  close(): void {
    this.stopping = true;
    for (const s of this.conns) s.destroy();
    this.conns.clear();
  }

  private serve(socket: Socket, cred: PeerCred, root: boolean): void {
    const maxBuf = this.opts.maxWriteBuffer ?? MAX_WRITE_BUFFER;
    const splitter = new LineSplitter(MAX_LINE);
    const rate = new RateLimit(RATE_PER_SECOND, RATE_BURST, this.opts.now ?? (() => performance.now()));
    const waiting: string[] = [];
    let busy = false;
    let streaming = false;
    let closed = false;
    let peerEnded = false;
    socket.on('close', () => (closed = true));
    // The client shut down its side: answer what it sent, then end ours
    // (a monitor streams on until it closes).
    socket.on('end', () => {
      peerEnded = true;
      if (!busy && !streaming && !closed) socket.end();
    });
    const fail = (reply: Reply): void => {
      closed = true;
      socket.end(line(reply));
      // A client that never reads never lets end() finish: bounded wait.
      setTimeout(() => socket.destroy(), 5000).unref();
    };
    const write = (text: string): boolean => {
      if (closed) return false;
      socket.write(text);
      if (socket.writableLength > maxBuf) {
        this.refused.slow++;
        if (streaming) conn.drop(errorReply('E_DROPPED', `monitor dropped: it did not read and over ${maxBuf} bytes waited for it`));
        else socket.destroy();
        return false;
      }
      return true;
    };
    const conn: Conn = {
      cred,
      send: (obj) => write(line(obj)),
      sendLine: (l) => write(`${l}\n`),
      stream: (onClose) => {
        streaming = true;
        this.monitors++;
        socket.on('close', () => {
          this.monitors--;
          onClose();
        });
      },
      onClose: (fn) => {
        if (socket.destroyed) {
          fn();
          return () => undefined;
        }
        socket.once('close', fn);
        return () => socket.removeListener('close', fn);
      },
      drop: (reply) => {
        if (closed) return;
        closed = true;
        socket.end(line(reply));
        setTimeout(() => socket.destroy(), 5000).unref();
      },
      get closed() {
        return closed || socket.destroyed;
      },
    };
    const next = async (): Promise<void> => {
      busy = true;
      while (waiting.length > 0 && !closed) {
        const reply = await this.handle(waiting.shift()!, conn, root);
        if (reply !== undefined) write(line(reply));
      }
      busy = false;
      if (peerEnded && !streaming && !closed) socket.end();
    };
    socket.on('data', (chunk: Buffer) => {
      if (closed || streaming) return;
      const lines = splitter.push(chunk);
      if (splitter.overflow) {
        this.refused.oversize++;
        return fail(errorReply('E_PROTOCOL', `request line longer than ${MAX_LINE} bytes`));
      }
      for (const l of lines) {
        if (!rate.take() || waiting.length >= MAX_PENDING) {
          this.refused.rate++;
          return fail(errorReply('E_RATE', `too many requests on one connection (at most ${RATE_PER_SECOND} per second)`));
        }
        waiting.push(l);
      }
      if (!busy) void next();
    });
  }

  /** One request line → its reply (undefined when the handler streams and already answered). */
  private async handle(text: string, conn: Conn, root: boolean): Promise<Reply | undefined> {
    const req = parseRequest(text);
    if (isReply(req)) return req;
    const h = Object.hasOwn(this.opts.handlers, req.cmd) ? this.opts.handlers[req.cmd] : undefined;
    if (h === undefined) return errorReply('E_UNKNOWN_COMMAND', `unknown command "${req.cmd.slice(0, 64)}" (known: ${Object.keys(this.opts.handlers).join(', ')})`);
    if (h.access === 'write' && !root) return errorReply('E_DENIED', `permission denied: "${req.cmd}" changes the daemon and needs root`);
    try {
      return await h.run(req, conn);
    } catch (e) {
      this.opts.log.error({ err: e, cmd: req.cmd }, 'control request failed unexpectedly');
      return errorReply('E_FAILED', `internal error: ${(e as Error).message}`);
    }
  }
}

function line(obj: unknown): string {
  return `${JSON.stringify(obj)}\n`;
}
