/**
 * The control protocol: one JSON object per line, both ways (UTF-8, `\n`).
 * Requests `{"cmd":"status", ...}`; replies `{"ok":true, ...}` or
 * `{"ok":false,"error":"...","code":"E_..."}`. Pure: bytes in, values out.
 */

/** The longest line either side accepts (a request is a few dozen bytes; a reply a few KiB). */
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
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  overflow = false;

  constructor(private readonly max = MAX_LINE) {}

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
        this.parts = [];
        this.size = 0;
        return lines;
      }
      if (nl < 0) {
        if (end > start) {
          this.parts.push(chunk.subarray(start, end));
          this.size += end - start;
        }
        return lines;
      }
      this.parts.push(chunk.subarray(start, end));
      lines.push(Buffer.concat(this.parts).toString('utf8'));
      this.parts = [];
      this.size = 0;
      start = nl + 1;
    }
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
