/**
 * The control socket's connections: who may ask what, bounded input and
 * output, and dispatch through a table of handlers (handlers.ts). Limits:
 * - at most MAX_CONNECTIONS at once (the unit's LimitNOFILE=256; the daemon
 *   itself needs under 100 descriptors: 128 clients leave room); of these,
 *   ROOT_RESERVED are kept for privileged peers (root, or the daemon's own
 *   uid) and each other uid may hold at most MAX_PER_UID: one group member
 *   cannot take the slots root's `settle` needs at boot. One more is answered
 *   E_BUSY and closed;
 * - a connection with no request in progress that stays idle IDLE_MS, or
 *   whose partial request line is not complete within LINE_MS, is answered
 *   E_TIMEOUT and closed (a monitor, a settle that waits, are not idle);
 * - a request line over MAX_LINE (64 KiB): error reply, connection closed;
 *   invalid JSON, an unknown command: error reply, connection kept;
 * - RATE_PER_SECOND requests per connection (burst RATE_BURST): over it,
 *   E_RATE and closed; requests on one connection are served one at a time
 *   and at most MAX_PENDING lines may wait (a client pipelining more is over
 *   its rate); once a connection streams (monitor), lines still queued are
 *   dropped and nothing more is read but its EOF;
 * - a client that does not read: when its unsent output passes
 *   MAX_WRITE_BUFFER it is dropped (a monitor gets one last line saying so).
 * Every connection the server ends (a refusal, an error, a timeout) gets its
 * last line and our EOF; it is destroyed when the peer's EOF comes, or
 * CLOSE_GRACE_MS later: a refused peer that never closes its side holds no
 * descriptor for long. At most MAX_LINGERING such connections wait for the
 * peer; past that, one is destroyed as soon as its line is flushed (a flood
 * of refused connections holds a bounded number of descriptors). Waiting
 * for the peer lets a client that writes its request right after connecting
 * read the refusal instead of failing with EPIPE. A monitor whose peer sent
 * EOF, or whose socket errs, ends at once.
 * Nothing a client does throws into the daemon: every handler call is
 * caught, every socket error ends only that connection.
 */
import { type Socket } from 'node:net';
import { type Log } from '../core/queue.js';
import { type PeerCred } from '../sys/peercred.js';
import { errorReply, isReply, LineSplitter, MAX_LINE, parseRequest, RateLimit, type Reply, type Request } from './protocol.js';

export const MAX_CONNECTIONS = 128;
export const ROOT_RESERVED = 16;
export const MAX_PER_UID = 16;
export const IDLE_MS = 10_000;
export const LINE_MS = 5_000;
export const CLOSE_GRACE_MS = 5_000;
export const MAX_LINGERING = 32;
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
  /**
   * From now on the connection only streams (no more requests are read, the
   * ones queued are dropped); false when it already streams (one stream per
   * connection).
   */
  stream(onClose: () => void): boolean;
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
  /** The daemon's effective uid: a peer with it has root's rights (a daemon run as a user serves that user). */
  ownerUid?: number;
  now?: () => number;
  maxConnections?: number;
  rootReserved?: number;
  maxPerUid?: number;
  idleMs?: number;
  lineMs?: number;
  maxWriteBuffer?: number;
  closeGraceMs?: number;
  maxLingering?: number;
}

export class ControlServer {
  private readonly conns = new Set<Socket>();
  /** Open connections by uid of unprivileged peers (the per-uid cap). */
  private readonly perUid = new Map<number, number>();
  private unprivileged = 0;
  /** Connections refused or dropped, by reason (status, tests). */
  readonly refused = { busy: 0, denied: 0, oversize: 0, rate: 0, slow: 0, idle: 0 };
  private stopping = false;
  /** Ended connections waiting for their peer's EOF. */
  private lingering = 0;
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
    const max = this.opts.maxConnections ?? MAX_CONNECTIONS;
    if (this.conns.size >= max) return this.refuse(socket, 'busy', errorReply('E_BUSY', `too many control connections (at most ${max})`));
    const cred = this.opts.credentials(socket);
    const privileged = cred !== undefined && (cred.uid === 0 || cred.uid === (this.opts.ownerUid ?? process.geteuid?.() ?? 0));
    if (cred === undefined || !(privileged || this.opts.readAllowed(cred))) {
      const why = cred === undefined ? "the peer's credentials could not be read" : `uid ${cred.uid} is not allowed (root, or a member of the control group)`;
      this.opts.log.debug({ uid: cred?.uid, pid: cred?.pid }, 'control connection refused');
      return this.refuse(socket, 'denied', errorReply('E_DENIED', `permission denied: ${why}`));
    }
    if (!privileged) {
      const shared = max - (this.opts.rootReserved ?? ROOT_RESERVED);
      const perUid = this.opts.maxPerUid ?? MAX_PER_UID;
      if (this.unprivileged >= shared) return this.refuse(socket, 'busy', errorReply('E_BUSY', `too many control connections of non-root users (at most ${shared}; the rest are kept for root)`));
      if ((this.perUid.get(cred.uid) ?? 0) >= perUid) return this.refuse(socket, 'busy', errorReply('E_BUSY', `too many control connections of uid ${cred.uid} (at most ${perUid})`));
      this.unprivileged++;
      this.perUid.set(cred.uid, (this.perUid.get(cred.uid) ?? 0) + 1);
      socket.once('close', () => {
        this.unprivileged--;
        const n = this.perUid.get(cred.uid)! - 1;
        if (n === 0) this.perUid.delete(cred.uid);
        else this.perUid.set(cred.uid, n);
      });
    }
    this.conns.add(socket);
    socket.on('close', () => this.conns.delete(socket));
    this.serve(socket, cred, privileged);
  };

  /** Close every connection (the daemon stops). */
  close(): void {
    this.stopping = true;
    for (const s of this.conns) s.destroy();
    this.conns.clear();
  }

  private refuse(socket: Socket, why: 'busy' | 'denied', reply: Reply): void {
    this.refused[why]++;
    this.finish(socket, reply);
  }

  /**
   * End a connection: its last line (if any) and our EOF, the peer's data
   * read and discarded (so its EOF is seen), destroyed at that EOF or after
   * the grace time; or, with MAX_LINGERING already waiting, as soon as the
   * line is flushed. With allowHalfOpen, end() alone waits for the peer's
   * EOF forever (a peer that never closed kept one descriptor per refusal).
   */
  private finish(socket: Socket, reply: Reply | undefined): void {
    if (socket.destroyed) return;
    // The peer's EOF came already: nothing to wait for once the line is out.
    const linger = !socket.readableEnded && this.lingering < (this.opts.maxLingering ?? MAX_LINGERING);
    if (linger) {
      this.lingering++;
      socket.once('close', () => this.lingering--);
    }
    socket.removeAllListeners('data');
    socket.on('data', () => undefined);
    socket.resume();
    socket.once('end', () => socket.destroy());
    socket.end(reply === undefined ? '' : line(reply), () => {
      if (!linger) socket.destroy();
    });
    setTimeout(() => socket.destroy(), this.opts.closeGraceMs ?? CLOSE_GRACE_MS).unref();
  }

  private serve(socket: Socket, cred: PeerCred, root: boolean): void {
    const maxBuf = this.opts.maxWriteBuffer ?? MAX_WRITE_BUFFER;
    const idleMs = this.opts.idleMs ?? IDLE_MS;
    const lineMs = this.opts.lineMs ?? LINE_MS;
    const splitter = new LineSplitter(MAX_LINE);
    const rate = new RateLimit(RATE_PER_SECOND, RATE_BURST, this.opts.now ?? (() => performance.now()));
    const waiting: string[] = [];
    let busy = false;
    let streaming = false;
    let closed = false;
    let peerEnded = false;
    let timer: NodeJS.Timeout | undefined;
    let timing: 'idle' | 'line' | undefined;
    const stopTimer = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      timing = undefined;
    };
    // Between requests: idle (from the last answer) or a partial line (from its first byte: dripping bytes does not extend it).
    const arm = (): void => {
      if (closed || busy || streaming || peerEnded) return stopTimer();
      const want = splitter.buffered > 0 ? 'line' : 'idle';
      if (timing === want) return;
      stopTimer();
      timing = want;
      timer = setTimeout(() => {
        this.refused.idle++;
        fail(errorReply('E_TIMEOUT', want === 'line' ? `request line not complete within ${lineMs / 1000} s` : `idle for ${idleMs / 1000} s: connection closed`));
      }, want === 'line' ? lineMs : idleMs);
      timer.unref();
    };
    socket.on('close', () => {
      closed = true;
      stopTimer();
    });
    // The client shut down its side: answer what it sent, then end ours;
    // a monitor ends now (nobody will read its records).
    socket.on('end', () => {
      peerEnded = true;
      stopTimer();
      if (streaming) socket.destroy();
      else if (!busy && !closed) fail(undefined);
    });
    const fail = (reply: Reply | undefined): void => {
      closed = true;
      stopTimer();
      this.finish(socket, reply);
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
        if (streaming) return false;
        streaming = true;
        waiting.length = 0; // pipelined requests behind a monitor are not served
        stopTimer();
        this.monitors++;
        socket.on('close', () => {
          this.monitors--;
          onClose();
        });
        return true;
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
        fail(reply);
      },
      get closed() {
        return closed || socket.destroyed;
      },
    };
    const next = async (): Promise<void> => {
      busy = true;
      stopTimer();
      while (waiting.length > 0 && !closed && !streaming) {
        const reply = await this.handle(waiting.shift()!, conn, root);
        if (reply !== undefined) write(line(reply));
      }
      busy = false;
      if (peerEnded && !streaming && !closed) fail(undefined);
      else arm();
    };
    socket.on('data', (chunk: Buffer) => {
      // A stream reads on only to see the peer's EOF.
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
      if (!busy && waiting.length > 0) void next();
      else arm();
    });
    arm();
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
