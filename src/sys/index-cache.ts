/**
 * The index cache: the index compiled from depmod's files, kept in
 * `<cache dir>/<release>-<hash of the module directory>.idx` (a meta.pb with the compiled matchers, plus a
 * record of the files it was built from: core/index/meta/cache-record.ts), so
 * that the next start maps it instead of parsing depmod's text again.
 *
 * What is recorded: modules.dep, modules.alias, modules.builtin,
 * modules.builtin.modinfo and modules.softdep — everything the compiled index
 * is built from — each with its path, size, mtime (ns), inode and the SHA-256
 * of the bytes read (or that it was absent). Not recorded, because they are
 * not in the cache: modprobe.d and the kernel command line (read at every
 * load and applied over the index, ModuleIndex's `config`) and
 * modules.symbols (read on the first `symbol:` query, from the file).
 *
 * Trust: a cache is used only when its checksum holds, its format and kernel
 * release are this hotplugd's and this module directory's, and every source
 * is as recorded: same size, mtime and inode; a source whose stat differs,
 * or whose mtime is so recent that a change within the same timestamp tick
 * would not show ("racy", as git calls it), is hashed, and the cache is used
 * only if the hash matches (the record is then written again with the new
 * stat). Anything else — stale, truncated, damaged, foreign, unknown format,
 * not a regular file, too large — is one `problem`, and the caller reads
 * depmod's files (and, in a command that writes, writes a new cache).
 * Nothing here throws. A cache that passes is decoded as this hotplugd's own
 * (decodeMeta's `own`: what was checked when it was built is not checked
 * again at every start; module paths still are, and must be relative).
 *
 * Who wrote it: the checksum proves a cache intact, not who chose its
 * answers. A cache is read only from a directory that only root or this
 * user can change: every directory from `/` to it owned by root or this euid
 * and not writable by group or others unless sticky (trusted-dir.ts, the
 * control socket's rule), walked with O_NOFOLLOW descriptors; the file is
 * opened through the checked directory's descriptor, and its own fstat
 * (regular file, owned by root or this euid, not group/other-writable, one
 * link) is that of the descriptor whose bytes are read. Any other directory
 * is one problem naming it, and nothing is written there either. Only the
 * commands that act on the system (`run`, `coldplug`) write a cache;
 * `match` only reads one.
 */
import { type BigIntStats, closeSync, constants, fstatSync, mkdirSync, openSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { symbolsLoader } from '../core/index/assemble.js';
import { symbolsStream } from '../core/index/from-depmod.js';
import { type IndexParts } from '../core/index/module-index.js';
import { CACHE_FORMAT, type CacheRecord, type CacheSource, encodeCacheRecord, readCacheRecord, replaceCacheRecord } from '../core/index/meta/cache-record.js';
import { crc32, sha256 } from '../core/index/meta/checksum.js';
import { modulePathProblem } from '../core/index/module-path.js';
import { decodeMeta } from '../core/index/meta/read.js';
import { lazy } from '../core/lazy.js';
import { isHotplugError } from '../errors.js';
import { writeFileAtomic } from './atomic-write.js';
import { INDEX_FILE_MAX, readBoundedSync, readOpenBoundedSync } from './readfile.js';
import { entryPath, openTrustedDir, UntrustedDir } from './trusted-dir.js';

export const DEFAULT_CACHE_DIR = '/var/cache/hotplugd';

/** The encoder (and protobufjs), loaded only to write a cache, or by the daemon's preload. */
export const loadMetaWriter = lazy(() => import('../core/index/meta/write.js'));

/** What the compiled index is built from (modules.symbols is read on demand, from the file). */
export const CACHE_SOURCES = ['modules.dep', 'modules.alias', 'modules.builtin', 'modules.builtin.modinfo', 'modules.softdep'] as const;

/**
 * A source modified less than this before its stat was taken may have been
 * modified again within the same timestamp tick without its mtime changing:
 * it is hashed at the next load. File systems keep mtimes at a tick of a few
 * ms (Linux's coarse clock), FAT and some network file systems at 1–2 s.
 */
export const RACY_NS = 2_000_000_000n;

/** A depmod file as it was read for an index: its stat taken before reading, and the bytes. */
export interface SourceRead {
  path: string;
  stat: BigIntStats | undefined;
  bytes: Buffer | undefined;
}

/** Stat a source as the record wants it: undefined when it does not exist. */
export function statSource(path: string): BigIntStats | undefined {
  try {
    return statSync(path, { bigint: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The module directory's release: its last component (/lib/modules/RELEASE). */
export function releaseOf(modulesDir: string): string {
  return basename(modulesDir.replace(/\/+$/, '')) || 'root';
}

/**
 * The cache file for `modulesDir`: its release and the CRC-32 of its absolute
 * path, so that two trees of one release never take each other's cache (the
 * record still names the directory, and is checked).
 */
export function cacheFileFor(cacheDir: string, modulesDir: string): string {
  const hash = crc32(Buffer.from(resolve(modulesDir))).toString(16).padStart(8, '0');
  return join(cacheDir, `${releaseOf(modulesDir)}-${hash}.idx`);
}

/** The wall clock in ns (the clock file mtimes are taken from). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function sourceRecord(s: SourceRead): CacheSource {
  if (s.stat === undefined || s.bytes === undefined) return { path: s.path, present: false, size: 0n, mtimeNs: 0n, ino: 0n, sha256: new Uint8Array(0) };
  return { path: s.path, present: true, size: s.stat.size, mtimeNs: s.stat.mtimeNs, ino: s.stat.ino, sha256: sha256(s.bytes) };
}

/** What writing a cache came to, for one record: written, or why not (`level` info for an expected refusal: read-only, no permission). */
export type CacheWriteResult = { written: true; file: string; bytes: number } | { written: false; file: string; level: 'info' | 'warn'; problem: string; code?: string };

const EXPECTED_REFUSALS = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOENT']);

/** The problem text for a directory trusted-dir.ts refuses, naming it. */
function untrustedText(e: UntrustedDir): string {
  const p = e.problem;
  return `not trusted: ${p.dir}${p.ancestor ? ' (above the cache directory)' : ''} is ${p.why} (a cache is used only where no one but root or the daemon's user can write)`;
}

/**
 * Write `bytes` as the cache file `file`, atomically, through the descriptor
 * of its directory once checked (trusted-dir.ts), creating the directory
 * (0755, less the umask) when its parent passes that check. A directory
 * that fails it is not written to (level warn, code E_INPUT). Never throws.
 */
export function writeCacheFile(file: string, bytes: Uint8Array): CacheWriteResult {
  const dir = dirname(file);
  let dfd: number | undefined;
  try {
    try {
      dfd = openTrustedDir(dir, 'euid-or-root');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const pfd = openTrustedDir(dirname(dir), 'euid-or-root');
      try {
        mkdirSync(entryPath(pfd, basename(dir)), { mode: 0o755 });
      } catch (m) {
        if ((m as NodeJS.ErrnoException).code !== 'EEXIST') throw m;
      } finally {
        closeSync(pfd);
      }
      dfd = openTrustedDir(dir, 'euid-or-root');
    }
    writeFileAtomic(entryPath(dfd, basename(file)), bytes);
    return { written: true, file, bytes: bytes.length };
  } catch (e) {
    if (e instanceof UntrustedDir) return { written: false, file, level: 'warn', problem: untrustedText(e), code: 'E_INPUT' };
    const errno = (isHotplugError(e) ? (e.cause as NodeJS.ErrnoException | undefined)?.code : (e as NodeJS.ErrnoException).code) ?? 'error';
    const what = errno === 'ENOENT' ? `${dirname(dir)} does not exist` : `${dir} is not writable (${errno})`;
    return { written: false, file, level: EXPECTED_REFUSALS.has(errno) ? 'info' : 'warn', problem: what, code: errno };
  } finally {
    if (dfd !== undefined) closeSync(dfd);
  }
}

/** A write to do later (off the start-up path): encodes and writes when called. */
export type PendingCacheWrite = () => Promise<CacheWriteResult>;

/**
 * The write that follows a load from depmod's files: `parts` (snapshotted
 * now: a later `symbol:` query may add modules) and the sources as they were
 * read. Hashing and encoding happen when the returned function is called.
 */
export function pendingWrite(file: string, modulesDir: string, parts: IndexParts, sources: SourceRead[], statTimeNs: bigint): PendingCacheWrite {
  const snapshot: IndexParts = { ...parts, modules: parts.modules.slice() };
  return async () => {
    if (sources.some((s) => s.bytes !== undefined && s.stat === undefined)) {
      return { written: false, file, level: 'warn', problem: 'a source file could not be stat\'ed when it was read' };
    }
    // A cache holds module paths relative to the module directory only, and
    // a reader refuses any other (readCache): an index with an absolute path
    // (a depmod.d `external` directory) is not cached.
    const outside = snapshot.modules.find((m) => m.path !== null && m.path !== '' && modulePathProblem(m.path, false) !== null);
    if (outside !== undefined) return { written: false, file, level: 'info', problem: `module ${outside.name} has an absolute path (${outside.path}): an index cache holds only paths relative to the module directory` };
    const release = releaseOf(modulesDir);
    const record: CacheRecord = {
      format: CACHE_FORMAT,
      kernelRelease: release,
      modulesDir: resolve(modulesDir),
      statTimeNs,
      sources: sources.map((s) => sourceRecord({ ...s, path: resolve(s.path) })),
    };
    let bytes: Uint8Array;
    try {
      const { encodeMeta } = await loadMetaWriter();
      bytes = await encodeMeta(snapshot, release, encodeCacheRecord(record), { radix: false, moduleTable: true });
    } catch (e) {
      return { written: false, file, level: 'warn', problem: `cannot encode the index (${(e as Error).message})` };
    }
    return writeCacheFile(file, bytes);
  };
}

export interface CacheHit {
  parts: IndexParts;
  /** Set when a source had to be hashed (its stat changed, or was racy) and matched: the record is written again. */
  rewrite: PendingCacheWrite | undefined;
}

/** The cache's verdict: a hit, nothing there (no file: not worth a warning), or a problem naming why it was not used. */
export type CacheRead = { hit: CacheHit } | { absent: true } | { problem: string; code?: string; untrusted?: true };

/** The cache file's bytes, opened through its checked directory (see the file comment); throws UntrustedDir, errno errors, HotplugError. */
function readTrusted(file: string): Buffer {
  const euid = process.geteuid?.() ?? 0;
  const dfd = openTrustedDir(dirname(file), 'euid-or-root', euid);
  let fd: number;
  try {
    fd = openSync(entryPath(dfd, basename(file)), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } finally {
    closeSync(dfd);
  }
  try {
    const st = fstatSync(fd);
    const refuse = (why: string): never => {
      throw new UntrustedDir({ dir: file, ancestor: false, why });
    };
    if (st.isFile()) {
      if (st.uid !== euid && st.uid !== 0) refuse(euid === 0 ? `owned by uid ${st.uid}, not root` : `owned by uid ${st.uid}, neither root nor the daemon's uid ${euid}`);
      if ((st.mode & 0o022) !== 0) refuse(`writable by its group or others (mode ${(st.mode & 0o7777).toString(8)})`);
      if (st.nlink !== 1) refuse(`a file with ${st.nlink} links (another name of it could be anyone's)`);
    }
    return readOpenBoundedSync(fd, st, file, INDEX_FILE_MAX);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read the cache `file` for `modulesDir` and decide whether it may be used
 * (see the file comment). Never throws.
 */
export function readCache(file: string, modulesDir: string, opts: { write?: boolean } = {}): CacheRead {
  const statTimeNs = nowNs();
  let bytes: Buffer;
  try {
    bytes = readTrusted(file);
  } catch (e) {
    if (e instanceof UntrustedDir) {
      const p = e.problem;
      return { problem: p.dir === file ? `not trusted: the file is ${p.why}` : untrustedText(e), code: 'E_INPUT', untrusted: true };
    }
    // Missing (first start), or not ours to read (a user's `match`; the daemon's umask makes it root's): no cache, no warning.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') return { absent: true };
    if (code === 'ELOOP') return { problem: 'is a symlink: refused', code: 'E_INPUT' };
    if (isHotplugError(e)) return { problem: e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message, code: e.code };
    return { problem: `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const { record, at, checksumAt } = readCacheRecord(bytes, file);
    const release = releaseOf(modulesDir);
    const absDir = resolve(modulesDir);
    if (record.format !== CACHE_FORMAT) return { problem: `unknown cache format ${record.format} (this hotplugd writes ${CACHE_FORMAT})` };
    if (record.kernelRelease !== release || record.modulesDir !== absDir) {
      return { problem: `built for ${record.modulesDir} (release ${record.kernelRelease}), not ${absDir}` };
    }
    const want = CACHE_SOURCES.map((n) => join(absDir, n));
    if (record.sources.length !== want.length || record.sources.some((s, i) => s.path !== want[i])) return { problem: 'its record names other source files' };
    const fresh: CacheSource[] = [];
    let rewrite = false;
    for (const s of record.sources) {
      const st = statSource(s.path);
      if (st === undefined || !s.present) {
        if (st !== undefined || s.present) return { problem: `stale: ${s.path} ${s.present ? 'was removed' : 'appeared'}` };
        fresh.push(s);
        continue;
      }
      const racy = s.mtimeNs >= record.statTimeNs - RACY_NS;
      if (st.size === s.size && st.mtimeNs === s.mtimeNs && st.ino === s.ino && !racy) {
        fresh.push(s);
        continue;
      }
      const now = readBoundedSync(s.path, INDEX_FILE_MAX);
      const digest = sha256(now);
      if (!digest.equals(s.sha256)) return { problem: `stale: ${s.path} changed` };
      // Rewrite the record when that saves hashing next time: the stat
      // changed, or the mtime is no longer racy against this load's clock.
      rewrite ||= st.size !== s.size || st.mtimeNs !== s.mtimeNs || st.ino !== s.ino || s.mtimeNs < statTimeNs - RACY_NS;
      fresh.push({ ...s, size: st.size, mtimeNs: st.mtimeNs, ino: st.ino });
    }
    // Intact (its CRC-32), this hotplugd's format, fresh, and only this user
    // or root can have written it (readTrusted): decoded as this hotplugd's
    // own (decodeMeta's `own`).
    const decoded = decodeMeta(bytes, file, checksumAt, true);
    if (decoded.kernelRelease !== release) return { problem: `built for release ${decoded.kernelRelease}, not ${release}` };
    const warnings = decoded.warnings;
    const parts: IndexParts = {
      ...decoded,
      kind: 'cache',
      loadSymbols: symbolsLoader(
        decoded.modules,
        decoded.classes,
        warnings,
        symbolsStream(modulesDir, () => readOptionalText(join(modulesDir, 'modules.symbols')), warnings),
      ),
    };
    const again: PendingCacheWrite | undefined = rewrite && opts.write === true
      ? () => Promise.resolve(writeCacheFile(file, replaceCacheRecord(bytes, at, { ...record, statTimeNs, sources: fresh })))
      : undefined;
    return { hit: { parts, rewrite: again } };
  } catch (e) {
    if (isHotplugError(e)) return { problem: e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message, code: e.code };
    return { problem: `cannot be used (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
}

function readOptionalText(file: string): string | undefined {
  try {
    return readBoundedSync(file, INDEX_FILE_MAX).toString('latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
