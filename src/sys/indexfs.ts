/**
 * Reading an index and its configuration from the filesystem: the thin layer
 * over core/index/ (from-depmod.ts, meta/read.ts) and core/config.ts.
 */
import { type BigIntStats, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { indexFromDepmod } from '../core/index/from-depmod.js';
import { emptyConfig, type ModprobeConfig, parseCmdline, parseModprobeConf } from '../core/config.js';
import { type IndexKind, type IndexParts, ModuleIndex } from '../core/index/module-index.js';
import { decodeMeta } from '../core/index/meta/read.js';
import { HotplugError, isHotplugError } from '../errors.js';
import { cacheFileFor, nowNs, type PendingCacheWrite, pendingWrite, readCache, type SourceRead, statSource } from './index-cache.js';
import { CMDLINE_MAX, INDEX_FILE_MAX, MODPROBE_CONF_MAX, readBoundedSync } from './readfile.js';

/** kmod's search order; a file name in an earlier directory hides the same name later. */
export const DEFAULT_CONFIG_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/lib/modprobe.d', '/usr/lib/modprobe.d'];

export interface IndexLocation {
  /** Module directory (depmod output, and where module paths are relative to). */
  modulesDir: string;
  /**
   * A meta.pb named explicitly (--meta): always used, and any error reading
   * it is fatal. Without it, each load chooses between the module
   * directory's meta.pb and depmod's files again (chooseIndex).
   */
  meta?: string | undefined;
  /**
   * modprobe.d directories; undefined = DEFAULT_CONFIG_DIRS (those that do
   * not exist are ignored, as kmod does). Named directories must exist ('' is skipped).
   */
  configDirs?: string[] | undefined;
  /**
   * Kernel command line file; undefined = /proc/cmdline (absent: no command
   * line); '' = none. A named file must be readable.
   */
  cmdline?: string | undefined;
  /**
   * Directory of the index cache (index-cache.ts); undefined or '' = no
   * cache. The commands default to DEFAULT_CACHE_DIR.
   */
  cacheDir?: string | undefined;
}

/** A depmod file or meta.pb, bounded by INDEX_FILE_MAX; a missing file is E_INDEX_MISSING. */
function readIndexFile(file: string): Buffer {
  try {
    return readBoundedSync(file, INDEX_FILE_MAX);
  } catch (e) {
    if (isHotplugError(e)) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new HotplugError(code === 'ENOENT' ? 'E_INDEX_MISSING' : 'E_SYSTEM', `cannot read (${code ?? (e as Error).message})`, {
      file,
      cause: e,
    });
  }
}

/** A depmod file as text; with `capture`, its stat (taken before the read) and bytes are kept for the index cache. */
function readText(file: string, capture?: SourceRead[]): string {
  let stat: BigIntStats | undefined;
  try {
    if (capture !== undefined) stat = statSource(file);
  } catch {
    // Left undefined: the cache is then not written (index-cache.ts pendingWrite); the read below reports the error.
  }
  const bytes = readIndexFile(file);
  capture?.push({ path: file, stat, bytes });
  return bytes.toString('latin1');
}

function readOptional(file: string, capture?: SourceRead[]): string | undefined {
  if (existsSync(file)) return readText(file, capture);
  capture?.push({ path: file, stat: undefined, bytes: undefined });
  return undefined;
}

/** A file or directory named by a flag that cannot be used: E_INPUT naming the flag and the errno. */
function flagInputError(flag: string, file: string, e: unknown): HotplugError {
  if (isHotplugError(e)) return new HotplugError(e.code, `${flag}: ${e.message}`, { cause: e });
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return new HotplugError('E_INPUT', `${flag}: ${file}: cannot read (${code})`, { cause: e });
}

/**
 * modprobe.d files in kmod's order (libkmod-config.c conf_files_list): sorted
 * by name, a name in an earlier directory hiding it in later ones — also
 * when it is a symlink to /dev/null, which is how a packaged file is masked.
 * In a directory kmod reads names ending in `.conf` or `.alias`, not hidden
 * ones, and never a subdirectory; a path that is itself a file is read
 * whatever its name (`modprobe -C FILE`). A directory that cannot be listed
 * is skipped, unless `required` (named by --config-dir): then it is an
 * E_INPUT error.
 */
export function configFiles(dirs: readonly string[], required = false): string[] {
  const chosen = new Map<string, string>();
  for (const dir of dirs) {
    if (dir === '') continue;
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) {
        const name = dir.slice(dir.lastIndexOf('/') + 1);
        if (!chosen.has(name)) chosen.set(name, dir);
        continue;
      }
      names = readdirSync(dir);
    } catch (e) {
      if (required) throw flagInputError('--config-dir', dir, e);
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.') || !(name.endsWith('.conf') || name.endsWith('.alias')) || chosen.has(name)) continue;
      const full = join(dir, name);
      try {
        if (statSync(full).isDirectory()) continue;
      } catch {
        continue;
      }
      chosen.set(name, full);
    }
  }
  return [...chosen.keys()].sort().map((n) => chosen.get(n)!);
}

/**
 * The kernel command line: `undefined` reads /proc/cmdline, absent meaning
 * none; '' means none; a named file must be a readable regular file of at
 * most CMDLINE_MAX bytes (or /dev/null: empty), or it is an error (a mistyped --cmdline must not
 * silently drop its modprobe.blacklist=).
 */
function readCmdline(cmdlineFile: string | undefined): string | undefined {
  if (cmdlineFile === '') return undefined;
  const file = cmdlineFile ?? '/proc/cmdline';
  try {
    return readBoundedSync(file, CMDLINE_MAX, { memoryDevices: cmdlineFile !== undefined }).toString('latin1');
  } catch (e) {
    if (cmdlineFile === undefined && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw flagInputError(cmdlineFile === undefined ? 'kernel command line' : '--cmdline', file, e);
  }
}

/**
 * modprobe.d and the kernel command line. `configDirs` undefined means
 * DEFAULT_CONFIG_DIRS (missing ones ignored); given directories must exist.
 * `cmdlineFile`: see readCmdline. A modprobe.d file that cannot be read or is
 * larger than MODPROBE_CONF_MAX is skipped with a warning, as before.
 */
/** A modprobe.d name linked to /dev/null masks the same name in later directories, and is itself empty. */
function masked(file: string): boolean {
  try {
    return realpathSync(file) === '/dev/null';
  } catch {
    return false;
  }
}

export function loadConfig(configDirs: readonly string[] | undefined, cmdlineFile: string | undefined): ModprobeConfig {
  const cfg = emptyConfig();
  const cmdline = readCmdline(cmdlineFile);
  if (cmdline !== undefined) parseCmdline(cmdline, cfg);
  for (const file of configFiles(configDirs ?? DEFAULT_CONFIG_DIRS, configDirs !== undefined)) {
    if (masked(file)) continue;
    let text: string;
    try {
      text = readBoundedSync(file, MODPROBE_CONF_MAX, { memoryDevices: true }).toString('latin1');
    } catch (e) {
      const problem = isHotplugError(e) ? e.message.slice(file.length + 2) : `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
      cfg.warnings.push({ file, line: 0, problem });
      continue;
    }
    parseModprobeConf(text, file, cfg);
  }
  return cfg;
}

export interface IndexChoice {
  kind: IndexKind;
  /** The meta.pb file, or the module directory for depmod's files. */
  file: string;
  /** Named by --meta: no fallback. */
  explicit: boolean;
}

function mtimeOf(file: string): number | undefined {
  try {
    const st = statSync(file);
    return st.isFile() ? st.mtimeMs : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Which index a load reads, decided again at every load (start and each
 * SIGHUP), since depmod or build-meta may have run in between: --meta when
 * given; else the module directory's meta.pb when it is a regular file and
 * depmod has not run since it was written (modules.dep is not newer); else
 * depmod's files.
 */
export function chooseIndex(loc: IndexLocation): IndexChoice {
  if (loc.meta !== undefined) return { kind: 'meta.pb', file: loc.meta, explicit: true };
  const meta = join(loc.modulesDir, 'meta.pb');
  const metaTime = mtimeOf(meta);
  const depTime = mtimeOf(join(loc.modulesDir, 'modules.dep'));
  if (metaTime !== undefined && (depTime === undefined || depTime <= metaTime)) return { kind: 'meta.pb', file: meta, explicit: false };
  return { kind: 'depmod', file: loc.modulesDir, explicit: false };
}

/** What a load did with the index cache, for the caller to log and to finish later. */
export interface CacheOutcome {
  file: string;
  /** Why a cache that was there was not used (it is rebuilt when the index comes from depmod's files). */
  problem?: { problem: string; code?: string | undefined };
  /** The cache write this load calls for (a new cache, or a new record); run it off the start-up path. */
  write?: PendingCacheWrite;
}

export interface IndexLoad {
  index: ModuleIndex;
  /** Undefined when the cache is off (no cacheDir) or not consulted (--meta). */
  cache?: CacheOutcome;
}

/**
 * Load the index at `loc`. Precedence: an explicit --meta (the operator
 * named it); else a fresh index cache (proved to be built from the depmod
 * files there now, by stat and hash, and as fast to read as meta.pb); else
 * the module directory's meta.pb when chooseIndex picks it (fresh by mtime
 * only: depmod has not run since it was written); else depmod's files.
 * A meta.pb that was chosen automatically but cannot be read or decoded does
 * not disable a good module directory: depmod's files are read instead, and
 * the index says so (`fallback`, and a warning in `warnings`). An explicit
 * --meta that fails is an error, as is a fallback with no depmod files either
 * (then the meta.pb's own error is the one thrown). With `write` (the
 * commands that act on the system: `run`, `coldplug`), whenever the index
 * comes from depmod's files and the cache is on, the outcome carries the
 * write of a new cache — unless the cache's directory is not trusted
 * (index-cache.ts): nothing is written there. Without it (`match`, tests),
 * a trusted cache is read, and nothing is ever written or created.
 */
export function loadIndexWithCache(loc: IndexLocation, opts: { write?: boolean } = {}): IndexLoad {
  const config = loadConfig(loc.configDirs, loc.cmdline);
  const choice = chooseIndex(loc);
  let cache: CacheOutcome | undefined;
  let writable = false;
  if (!choice.explicit && loc.cacheDir !== undefined && loc.cacheDir !== '') {
    const file = cacheFileFor(loc.cacheDir, loc.modulesDir);
    const r = readCache(file, loc.modulesDir, opts);
    if ('hit' in r) return { index: new ModuleIndex(r.hit.parts, config), cache: { file, ...(r.hit.rewrite ? { write: r.hit.rewrite } : {}) } };
    cache = { file, ...('problem' in r ? { problem: { problem: r.problem, code: r.code } } : {}) };
    writable = opts.write === true && !('untrusted' in r);
  }
  const fromDepmod = (): IndexParts => {
    const sources: SourceRead[] = [];
    const statTimeNs = nowNs();
    const parts = depmodParts(loc.modulesDir, writable ? sources : undefined);
    if (cache && writable) cache.write = pendingWrite(cache.file, loc.modulesDir, parts, sources, statTimeNs);
    return parts;
  };
  if (choice.kind === 'depmod') return { index: new ModuleIndex(fromDepmod(), config), ...(cache ? { cache } : {}) };
  let metaError: HotplugError;
  try {
    return { index: new ModuleIndex(decodeMeta(readIndexFile(choice.file), choice.file), config), ...(cache ? { cache } : {}) };
  } catch (e) {
    if (choice.explicit || !isHotplugError(e)) throw e;
    metaError = e;
  }
  let parts: IndexParts;
  try {
    parts = fromDepmod();
  } catch {
    if (cache) delete cache.write;
    throw metaError;
  }
  const prefix = `${choice.file}: `;
  const why = `${metaError.message.startsWith(prefix) ? metaError.message.slice(prefix.length) : metaError.message} [${metaError.code}]`;
  const fallback = { file: choice.file, code: metaError.code, problem: why };
  parts.warnings.unshift({ file: choice.file, line: 0, problem: `not used, depmod's files read instead: ${why}` });
  return { index: new ModuleIndex({ ...parts, fallback }, config), ...(cache ? { cache } : {}) };
}

/** The index alone (loadIndexWithCache, the cache write left undone). */
export function loadIndex(loc: IndexLocation): ModuleIndex {
  return loadIndexWithCache(loc).index;
}

/**
 * Index parts from depmod's files in `dir`. `capture` receives each file the
 * compiled index is built from (CACHE_SOURCES, in that order) as it was read.
 */
export function depmodParts(dir: string, capture?: SourceRead[]): IndexParts {
  if (!existsSync(dir)) throw new HotplugError('E_INDEX_MISSING', 'no such module directory; pass --modules-dir or --meta', { file: dir });
  if (!existsSync(join(dir, 'modules.dep')) || !existsSync(join(dir, 'modules.alias'))) {
    throw new HotplugError('E_INDEX_MISSING', 'no depmod index here (modules.dep and modules.alias); run depmod, or pass --modules-dir or --meta', {
      file: dir,
    });
  }
  // In CACHE_SOURCES order.
  const dep = readText(join(dir, 'modules.dep'), capture);
  const alias = readText(join(dir, 'modules.alias'), capture);
  const builtin = readOptional(join(dir, 'modules.builtin'), capture);
  const builtinModinfo = readOptional(join(dir, 'modules.builtin.modinfo'), capture);
  const softdep = readOptional(join(dir, 'modules.softdep'), capture);
  return indexFromDepmod({ dir, alias, dep, builtin, softdep, builtinModinfo, symbols: () => readOptional(join(dir, 'modules.symbols')) });
}

