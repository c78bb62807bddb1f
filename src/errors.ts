/**
 * Errors with a stable code and one layer of context, so that callers and
 * administrators can act on `code` and read `message` (undici's style).
 */
export type ErrorCode =
  | 'E_USAGE'
  | 'E_INDEX_MISSING'
  | 'E_INDEX_CORRUPT'
  | 'E_INDEX_DEP_RANGE'
  | 'E_INDEX_DEP_CYCLE'
  | 'E_PATH_ESCAPE'
  | 'E_ELF'
  | 'E_DECOMPRESS'
  /** An input that is not what it should be: not a regular file, not readable, missing when named by a flag. */
  | 'E_INPUT'
  /** An input larger than its cap (see src/sys/readfile.ts). */
  | 'E_TOO_LARGE'
  | 'E_CANNOT_LOAD'
  | 'E_SYSTEM';

export class HotplugError extends Error {
  readonly code: ErrorCode;
  /** The file (or other object) the error is about, when there is one. */
  readonly file: string | undefined;

  constructor(code: ErrorCode, message: string, options: { file?: string; cause?: unknown } = {}) {
    // Raw, so JSON records carry it exactly; each human-readable output escapes it once (printable(), src/printable.ts).
    super(options.file !== undefined ? `${options.file}: ${message}` : message, { cause: options.cause });
    this.name = 'HotplugError';
    this.code = code;
    this.file = options.file;
  }
}

export function isHotplugError(e: unknown): e is HotplugError {
  return e instanceof HotplugError;
}

/** Documented exit codes (mdevd's convention): 0 ok, 1 no match / a load failed, 100 usage, 111 system. */
export const EXIT = {
  OK: 0,
  NO_MATCH: 1,
  /** `coldplug`: the walk was done but at least one module failed to load. */
  LOAD_FAILED: 1,
  /** `trigger`: some uevent files could not be written. */
  WRITE_FAILED: 1,
  USAGE: 100,
  SYSTEM: 111,
} as const;

/** The one escaping function for human-readable output lives in a leaf module; re-exported for existing importers. */
export { printable } from './printable.js';

/** A size cap for messages: 65536 → "64 KiB", 268435456 → "256 MiB". */
export function capText(cap: number): string {
  if (cap % (1024 * 1024) === 0) return `${cap / 1024 / 1024} MiB`;
  if (cap % 1024 === 0) return `${cap / 1024} KiB`;
  return `${cap} bytes`;
}
