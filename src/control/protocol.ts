/**
 * The control protocol: one JSON object per line, both ways (UTF-8, `\n`).
 * Requests `{"cmd":"status", ...}`; replies `{"ok":true, ...}` or
 * `{"ok":false,"error":"...","code":"E_..."}`. Pure: bytes in, values out.
 */

/** The longest line either side accepts (a request is a few dozen bytes; a reply a few KiB). */
/** settle's default and largest timeout, seconds (udevadm settle's default is 120): the client's --timeout and the daemon's check. */
export const SETTLE_DEFAULT_S = 120;
export const SETTLE_MAX_S = 86_400;

export const MAX_LINE = 64 * 1024;

/** Error codes of the protocol (stable: clients act on them). */
export type ControlCode =
  | 'E_PROTOCOL' // not one JSON object per line, a line over MAX_LINE
  | 'E_UNKNOWN_COMMAND'
  | 'E_DENIED' // the peer's credentials do not allow the command
  | 'E_RATE' // too many requests on one connection
  | 'E_BUSY' // too many connections
  | 'E_TIMEOUT' // settle timed out
  | 'E_FAILED' // the command ran and failed (reload kept the old index)
  | 'E_DROPPED' // a monitor that did not read was dropped
  | 'E_STOPPING';

export interface Request {
  cmd: string;
  [field: string]: unknown;
}

export type Reply = ({ ok: true } | { ok: false; error: string; code: ControlCode }) & Record<string, unknown>;

export function errorReply(code: ControlCode, error: string, extra: Record<string, unknown> = {}): Reply {
  return { ok: false, error, code, ...extra };
}

/** A request line → a request, or the error reply to send. */
export function parseRequest(line: string): Request | Reply {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return errorReply('E_PROTOCOL', 'a request is one JSON object per line');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return errorReply('E_PROTOCOL', 'a request is one JSON object per line');
  const cmd = (v as { cmd?: unknown }).cmd;
  if (typeof cmd !== 'string' || cmd === '') return errorReply('E_PROTOCOL', 'a request needs "cmd", a string');
  return v as Request;
}

export function isReply(v: Request | Reply): v is Reply {
  return 'ok' in v && (v as { ok: unknown }).ok === false && typeof (v as { code?: unknown }).code === 'string' && !('cmd' in v);
}

/**
 * Splits a byte stream into lines, bounded: a line longer than `max` bytes
 * (newline excluded) is an error, and nothing past `max` is ever buffered.
 * A partial line is copied into one growable buffer (at most 2 x `max`
 * bytes, released when the line completes): never kept as views of the
 * chunks it came in, since a line dripped one byte per chunk would pin one
 * chunk (and its pooled slab) per byte.
 */
export class LineSplitter {
  private buf: Buffer | undefined;
  private size = 0;
  overflow = false;

  constructor(private readonly max = MAX_LINE) {}

  /** Bytes of a partial line waiting for its newline. */
  get buffered(): number {
    return this.size;
  }

  /** Bytes of memory this splitter holds (the partial line's buffer). */
  get held(): number {
    return this.buf?.length ?? 0;
  }

  /** The complete lines in this chunk (without `\n`); sets `overflow` (and returns what came before) when a line is too long. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    if (this.overflow) return lines;
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl < 0 ? chunk.length : nl;
      if (this.size + (end - start) > this.max) {
        this.overflow = true;
        this.buf = undefined;
        this.size = 0;
        return lines;
      }
      if (nl < 0) {
        if (end > start) this.append(chunk, start, end);
        return lines;
      }
      if (this.size === 0) lines.push(chunk.toString('utf8', start, end));
      else {
        this.append(chunk, start, end);
        lines.push(this.buf!.toString('utf8', 0, this.size));
        this.buf = undefined;
        this.size = 0;
      }
      start = nl + 1;
    }
  }

  private append(chunk: Buffer, start: number, end: number): void {
    const need = this.size + (end - start);
    if (this.buf === undefined || this.buf.length < need) {
      const grown = Buffer.allocUnsafeSlow(Math.max(256, need, Math.min(2 * (this.buf?.length ?? 0), 2 * this.max)));
      this.buf?.copy(grown, 0, 0, this.size);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.size, start, end);
    this.size = need;
  }
}

/**
 * A token bucket: `burst` requests at once, refilled at `perSecond`.
 * take() is false when the connection is over its rate.
 */
export class RateLimit {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.perSecond);
    this.at = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
