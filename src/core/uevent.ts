/**
 * Kernel uevent messages: `ACTION@DEVPATH\0KEY=VALUE\0...`. The wire is not
 * trusted: sizes and field counts are capped, every field is split at its
 * first `=`, and anything that is not shaped like a kernel uevent is rejected
 * with a reason — never thrown.
 */

/** The kernel's own limits: UEVENT_BUFFER_SIZE 2048 bytes of environment, UEVENT_NUM_ENVP 64 (32 on old kernels). */
export const MAX_MESSAGE_BYTES = 8192;
export const MAX_FIELDS = 128;
const ACTIONS = new Set(['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind']);
/** libudev's re-broadcast messages start with this magic ("libudev\0"). */
const LIBUDEV_PREFIX = Buffer.from('libudev\0', 'latin1');

export interface Uevent {
  action: string;
  devpath: string;
  env: Map<string, string>;
  seqnum: string | undefined;
  modalias: string | undefined;
}

export type ParseResult = { ok: true; event: Uevent } | { ok: false; reason: string };

function reject(reason: string): ParseResult {
  return { ok: false, reason };
}

/** Parse one datagram. Strings are byte strings (latin1), as the index stores patterns. */
export function parseUevent(msg: Uint8Array): ParseResult {
  if (msg.length === 0) return reject('empty message');
  if (msg.length > MAX_MESSAGE_BYTES) return reject(`message of ${msg.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  const buf = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength);
  if (buf.length >= LIBUDEV_PREFIX.length && buf.subarray(0, LIBUDEV_PREFIX.length).equals(LIBUDEV_PREFIX)) {
    return reject('libudev message');
  }
  const text = buf.toString('latin1');
  const fields = text.split('\0');
  if (fields[fields.length - 1] === '') fields.pop();
  if (fields.length < 2) return reject('no environment after the header');
  if (fields.length > MAX_FIELDS + 1) return reject(`more than ${MAX_FIELDS} fields`);
  const header = fields[0]!;
  const at = header.indexOf('@');
  if (at <= 0) return reject('header is not ACTION@DEVPATH');
  const action = header.slice(0, at);
  const devpath = header.slice(at + 1);
  if (!ACTIONS.has(action)) return reject(`unknown action "${action.slice(0, 32)}"`);
  if (!devpath.startsWith('/')) return reject('devpath does not start with /');
  const env = new Map<string, string>();
  for (let i = 1; i < fields.length; i++) {
    const f = fields[i]!;
    const eq = f.indexOf('=');
    if (eq <= 0) return reject(`field ${i} is not KEY=VALUE`);
    const key = f.slice(0, eq);
    if (!/^[A-Za-z0-9_]+$/.test(key)) return reject(`field ${i} has a malformed key`);
    if (env.has(key)) return reject(`key ${key} appears twice`);
    env.set(key, f.slice(eq + 1));
  }
  if (env.get('ACTION') !== action) return reject('ACTION field does not match the header');
  if (env.get('DEVPATH') !== devpath) return reject('DEVPATH field does not match the header');
  const seqnum = env.get('SEQNUM');
  if (seqnum === undefined || !/^\d{1,20}$/.test(seqnum)) return reject('SEQNUM missing or not a number');
  const modalias = env.get('MODALIAS');
  return { ok: true, event: { action, devpath, env, seqnum, modalias } };
}

/** Build a message as the kernel does (tests and fuzzing). */
export function formatUevent(action: string, devpath: string, env: Record<string, string>): Buffer {
  const parts = [`${action}@${devpath}`, `ACTION=${action}`, `DEVPATH=${devpath}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  return Buffer.from(parts.join('\0') + '\0', 'latin1');
}

/**
 * SEQNUM bookkeeping: every kernel uevent carries the next sequence number, so
 * a jump means the socket lost events (or that they went to another network
 * namespace only, which costs one harmless resync).
 */
export class SeqnumTracker {
  private last: bigint | undefined;

  /** Record a seqnum; returns how many events were skipped before it (0 when in order). */
  see(seqnum: string): bigint {
    const n = BigInt(seqnum);
    let gap = 0n;
    if (this.last !== undefined && n > this.last + 1n) gap = n - this.last - 1n;
    if (this.last === undefined || n > this.last) this.last = n;
    return gap;
  }

  /** After a resync, the kernel's current seqnum is the new baseline. */
  reset(kernelSeqnum: bigint | undefined): void {
    this.last = kernelSeqnum;
  }

  get latest(): bigint | undefined {
    return this.last;
  }
}
