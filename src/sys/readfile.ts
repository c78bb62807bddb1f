/**
 * Bounded reads of files that must be regular files: every file hotplugd reads
 * goes through here with a cap. The contract:
 * - open with O_RDONLY|O_NONBLOCK|O_CLOEXEC (libuv adds O_CLOEXEC; O_NONBLOCK so that opening a FIFO
 *   never waits for a writer), plus O_NOFOLLOW when the caller asks (sysfs
 *   attributes: a symlink there is not an attribute);
 * - fstat the descriptor and refuse anything but a regular file (FIFO, device,
 *   directory, socket) with E_INPUT — or, for files an operator names, also
 *   /dev/null and the other memory devices (ReadOptions.memoryDevices);
 * - read at most cap + 1 bytes and refuse with E_TOO_LARGE when there are more.
 *   What read(2) returns decides, not st_size: sysfs reports 4096 for every
 *   attribute and /proc reports 0;
 * - close the descriptor always.
 * open(2)/read(2) failures (ENOENT, EACCES, ELOOP for a symlink under
 * O_NOFOLLOW, ...) are thrown as Node's own errors, code intact, so callers
 * can tell "absent" from "unreadable".
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { capText, HotplugError } from '../errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * A sysfs `uevent` or `modalias` attribute: sysfs never returns more than one
 * page (4096 bytes) from an attribute, and the kernel's uevent environment
 * buffer (UEVENT_BUFFER_SIZE) is 2048, so 4096 already allows twice the real
 * maximum of a uevent file.
 */
export const SYSFS_ATTR_MAX = 4 * KiB;
/**
 * The kernel command line: COMMAND_LINE_SIZE is 2048 on x86 and 4096 on
 * arm64, at most a few KiB on every architecture; 64 KiB leaves room for a
 * hand-made --cmdline file and still refuses /dev/zero-like input early.
 */
export const CMDLINE_MAX = 64 * KiB;
/**
 * Each depmod file (modules.alias, .dep, .builtin, .softdep, .symbols,
 * .builtin.modinfo) and meta.pb: Debian 6.1's modules.alias is ~1.3 MB and its
 * largest, modules.symbols, ~0.6 MB; 64 MiB is ~50x the largest seen.
 */
export const INDEX_FILE_MAX = 64 * MiB;
/** Each modprobe.d file: real ones are a few KiB; 1 MiB is far past any hand-written configuration. */
export const MODPROBE_CONF_MAX = 1 * MiB;

/**
 * The open(2) flags of every bounded read. O_CLOEXEC is not in Node's
 * constants because libuv adds it to every open(2) itself (uv__fs_open).
 */
function openFlags(noFollow: boolean): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0);
}

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function notRegular(file: string, st: Stats): HotplugError {
  return new HotplugError('E_INPUT', `${kindOf(st)}, not a regular file: refused`, { file });
}

function tooLarge(file: string, cap: number): HotplugError {
  return new HotplugError('E_TOO_LARGE', `larger than the ${capText(cap)} cap: refused`, { file });
}

export interface ReadOptions {
  /** Refuse a symlink (open fails with ELOOP). */
  noFollow?: boolean;
  /**
   * Also read the side-effect-free memory devices (/dev/null, /dev/zero,
   * /dev/full, /dev/random, /dev/urandom) through the same cap: a file an
   * operator names on the command line, where /dev/null is Unix's "empty"
   * (`modprobe -C /dev/null`). /dev/zero and the random devices never end,
   * so the cap refuses them. Any other device is refused before it is
   * opened: opening some (a watchdog, a tape) has effects of its own.
   */
  memoryDevices?: boolean;
}

/** Character devices of major 1 that are harmless to open and read: null, zero, full, random, urandom. */
const MEMORY_DEVICE_MINORS = new Set([3, 5, 7, 8, 9]);

function isMemoryDevice(st: Stats): boolean {
  return st.isCharacterDevice() && Math.floor(st.rdev / 256) % 4096 === 1 && MEMORY_DEVICE_MINORS.has(st.rdev % 256);
}

/** Before open(2): a device that is not a memory device is refused unopened (a regular file, or anything else, is left to fstat). */
function checkBeforeOpen(file: string, opts: ReadOptions): void {
  if (opts.memoryDevices !== true) return;
  let st: Stats;
  try {
    st = (opts.noFollow === true ? lstatSync : statSync)(file);
  } catch {
    return; // open(2) says why
  }
  if ((st.isCharacterDevice() || st.isBlockDevice()) && !isMemoryDevice(st)) throw notRegular(file, st);
}

function acceptable(st: Stats, opts: ReadOptions): boolean {
  return st.isFile() || (opts.memoryDevices === true && isMemoryDevice(st));
}

/** First buffer size: the whole file when st_size is believable, else one page; cap + 1 at most. */
function firstSize(st: Stats, cap: number): number {
  return Math.min(cap + 1, Math.max(st.size + 1, 4096));
}

/**
 * Open `file` as a regular file (the flags above) and return its descriptor;
 * the caller closes it. Throws E_INPUT for anything but a regular file.
 */
export function openRegularSync(file: string, opts: ReadOptions = {}): number {
  return openRegularStatSync(file, opts).fd;
}

function openRegularStatSync(file: string, opts: ReadOptions): { fd: number; st: Stats } {
  checkBeforeOpen(file, opts);
  const fd = openSync(file, openFlags(opts.noFollow ?? false));
  try {
    const st = fstatSync(fd);
    if (!acceptable(st, opts)) throw notRegular(file, st);
    return { fd, st };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * What has been read so far, at most cap + 1 bytes: `room()` is where the next
 * read goes (growing the buffer, or E_TOO_LARGE once cap + 1 bytes are in).
 */
class Bounded {
  private buf: Buffer;
  private len = 0;

  constructor(
    private readonly file: string,
    private readonly cap: number,
    st: Stats,
  ) {
    this.buf = Buffer.allocUnsafe(firstSize(st, cap));
  }

  room(): { buf: Buffer; offset: number; length: number } {
    if (this.len === this.buf.length) {
      if (this.len > this.cap) throw tooLarge(this.file, this.cap);
      const bigger = Buffer.allocUnsafe(Math.min(this.cap + 1, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    return { buf: this.buf, offset: this.len, length: this.buf.length - this.len };
  }

  /** Account for `n` bytes read into room(); false at end of file. */
  took(n: number): boolean {
    this.len += n;
    return n > 0;
  }

  result(): Buffer {
    if (this.len > this.cap) throw tooLarge(this.file, this.cap);
    return this.buf.subarray(0, this.len);
  }
}

/** Read all of regular file `file`, at most `cap` bytes (else E_TOO_LARGE). For start-up: blocks the thread. */
export function readBoundedSync(file: string, cap: number, opts: ReadOptions = {}): Buffer {
  const { fd, st } = openRegularStatSync(file, opts);
  try {
    return readAllSync(fd, st, file, cap);
  } finally {
    closeSync(fd);
  }
}

/**
 * readBoundedSync for a descriptor the caller opened (with O_NONBLOCK) and
 * fstat'ed as `st` (the checks are those of that descriptor); `file` names
 * it in errors. The caller closes it.
 */
export function readOpenBoundedSync(fd: number, st: Stats, file: string, cap: number): Buffer {
  if (!st.isFile()) throw notRegular(file, st);
  return readAllSync(fd, st, file, cap);
}

/** Read what `fd` holds, at most `cap` bytes (else E_TOO_LARGE); the caller checked what it is. */
function readAllSync(fd: number, st: Stats, file: string, cap: number): Buffer {
  const b = new Bounded(file, cap, st);
  for (;;) {
    const r = b.room();
    if (!b.took(readSync(fd, r.buf, r.offset, r.length, null))) return b.result();
  }
}

/** readBoundedSync on libuv's threads: for the /sys walk and module files. */
export async function readBounded(file: string, cap: number, opts: ReadOptions = {}): Promise<Buffer> {
  checkBeforeOpen(file, opts);
  const fh = await open(file, openFlags(opts.noFollow ?? false));
  try {
    const st = await fh.stat();
    if (!acceptable(st, opts)) throw notRegular(file, st);
    const b = new Bounded(file, cap, st);
    for (;;) {
      const r = b.room();
      if (!b.took((await fh.read(r.buf, r.offset, r.length, null)).bytesRead)) return b.result();
    }
  } finally {
    await fh.close();
  }
}
