/**
 * What every command shares: flag parsing with usage errors, the index
 * location flags, and turning errors into one line and an exit code.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { release } from 'node:os';
import { type ModuleIndex } from '../core/index/module-index.js';
import { type Log } from '../core/queue.js';
import { EXIT, HotplugError, isHotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { type CacheWriteResult, DEFAULT_CACHE_DIR, type PendingCacheWrite } from '../sys/index-cache.js';
import { type CacheOutcome, DEFAULT_CONFIG_DIRS, type IndexLocation } from '../sys/indexfs.js';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
}

export const INDEX_FLAGS = {
  'modules-dir': { type: 'string' },
  meta: { type: 'string' },
  'config-dir': { type: 'string', multiple: true },
  cmdline: { type: 'string' },
  'cache-dir': { type: 'string' },
} as const;

export const INDEX_HELP = `Index:
  --modules-dir DIR   module directory (default /lib/modules/$(uname -r)): its
                      meta.pb when depmod has not run since it was written,
                      otherwise its depmod files (chosen again at each reload;
                      a damaged meta.pb there falls back to the depmod files)
  --meta FILE         read a Monogon-compatible meta.pb instead of depmod's files
                      (module paths stay relative to --modules-dir)
  --config-dir DIR    modprobe.d directory, which must exist; repeat for several;
                      '' for none (default: those of
                      ${DEFAULT_CONFIG_DIRS.join(' ')} that exist)
  --cmdline FILE      kernel command line for modprobe.blacklist= and module.param=,
                      which must be readable (default /proc/cmdline if present;
                      '' to ignore)
  --cache-dir DIR     index cache directory (default $HOTPLUGD_CACHE_DIR, else
                      ${DEFAULT_CACHE_DIR}; '' for none): the index compiled
                      from depmod's files is kept in DIR/RELEASE-HASH.idx and
                      used while those files are unchanged (size, mtime, inode,
                      else SHA-256). Order: --meta, then a fresh cache (proved
                      to match depmod's files), then a meta.pb fresh by mtime,
                      then depmod's files (after which run and coldplug write
                      the cache in the background; match never writes one; a
                      damaged or stale cache is reported and rebuilt, never
                      trusted). Used only when no one but root or the daemon's
                      user can write DIR or any directory above it`;

export function defaultModulesDir(): string {
  return `/lib/modules/${release()}`;
}

/** Flag declarations, as parseArgs takes them. */
type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** The values parseArgs gives for `options` (strict): each flag typed by its own declaration. */
export type FlagValues<O extends FlagOptions> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: boolean }>>['values'];

/**
 * The index flags as a location. The choice between the module directory's
 * meta.pb and depmod's files is not made here but at every load
 * (sys/indexfs.ts chooseIndex), so that a reload sees what depmod or
 * build-meta wrote since.
 */
export function indexLocation(v: FlagValues<typeof INDEX_FLAGS>): IndexLocation {
  const dirs = v['config-dir'];
  return {
    modulesDir: v['modules-dir'] ?? defaultModulesDir(),
    meta: v.meta,
    configDirs: dirs && dirs.length > 0 ? dirs : undefined,
    cmdline: v.cmdline,
    cacheDir: v['cache-dir'] ?? process.env.HOTPLUGD_CACHE_DIR ?? DEFAULT_CACHE_DIR,
  };
}

/** A cache that was there but not used: one warning naming the file and why. */
export function logCacheProblem(cache: CacheOutcome | undefined, log: Log): void {
  const p = cache?.problem;
  if (cache !== undefined && p !== undefined) log.warn({ file: cache.file, problem: p.problem, ...(p.code !== undefined ? { code: p.code } : {}) }, 'index cache not used');
}

/**
 * The daemon's cache write: as writeCache, and when the file system is still
 * read-only (EROFS: the root at early boot, before systemd-remount-fs), tried
 * again after each of `delays` ms, quietly, until written or `superseded`
 * (a reload asked for a newer write). Timers do not keep the process alive.
 */
export async function writeCacheRetrying(write: PendingCacheWrite, log: Log, superseded: () => boolean, delays = [15_000, 30_000, 60_000, 120_000, 240_000]): Promise<void> {
  let r = await writeCache(write, log);
  for (const ms of delays) {
    if (r.written || r.code !== 'EROFS') return;
    await new Promise((resolve) => setTimeout(resolve, ms).unref());
    if (superseded()) return;
    r = await write().catch((): CacheWriteResult => ({ written: false, file: '', level: 'warn', problem: 'unexpected' }));
    if (r.written) log.info({ file: r.file, bytes: r.bytes, retried: true }, 'index cache written');
  }
}

/** Run a pending cache write and log what it came to (one record; never throws). */
export async function writeCache(write: PendingCacheWrite, log: Log): Promise<CacheWriteResult> {
  const t0 = performance.now();
  const r = await write().catch(
    (e: unknown): CacheWriteResult => ({ written: false, file: '', level: 'warn', problem: `unexpected: ${(e as Error).message}` }),
  );
  if (r.written) log.info({ file: r.file, bytes: r.bytes, ms: Math.round(performance.now() - t0) }, 'index cache written');
  else log[r.level]({ file: r.file, problem: r.problem, ...(r.code !== undefined ? { code: r.code } : {}) }, 'index cache not written');
  return r;
}

/** parseArgs, with its errors turned into E_USAGE in our words (usageProblem). */
export function parseFlags<T extends FlagOptions>(args: string[], options: T, allowPositionals: boolean): { values: FlagValues<T>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (e) {
    throw new HotplugError('E_USAGE', usageProblem(e as Error & { code?: string }, Object.keys(options).map((n) => `--${n}`)));
  }
}

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The known name closest to `word` (at most a third of its letters off), for "did you mean"; undefined when none is close. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(word, name);
    if (best === undefined || d < best.d) best = { name, d };
  }
  return best !== undefined && best.d > 0 && best.d <= Math.max(1, Math.floor(word.length / 3)) ? best.name : undefined;
}

/** Node's parseArgs errors, said as hotplugd says usage errors: the flag, what is wrong, the closest flag. */
function usageProblem(e: Error & { code?: string }, flags: readonly string[]): string {
  const flag = /'(-[^' ]*)/.exec(e.message)?.[1];
  const arg = /'([^']*)'/.exec(e.message)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const near = flag === undefined ? undefined : closest(flag.split('=')[0]!, flags);
      return `unknown flag ${flag ?? '?'}${near !== undefined ? ` (did you mean ${near}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (e.message.includes('does not take an argument')) return `${flag ?? 'a flag'} takes no value`;
      if (e.message.includes('ambiguous')) return `${flag ?? 'a flag'} needs a value; for one that starts with "-", write ${flag ?? '--flag'}=-VALUE`;
      return `${flag ?? 'a flag'} needs a value`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${arg ?? '?'}"`;
    default:
      return e.message;
  }
}

/** The error line of a command: `hotplugd: MESSAGE[HELP] [CODE]`, escaped (printable()), newline-terminated. */
export function hotplugErrorLine(e: HotplugError, help = ''): string {
  return `${printable(`hotplugd: ${e.message}${help} [${e.code}]`)}\n`;
}

/**
 * Run a command body: errors become one escaped line on stderr and a documented exit
 * code. The one error shape: `hotplugd: what is wrong[: detail] [E_CODE]`; a
 * usage error also points at the command's --help.
 */
export async function runCommand(io: Io, body: () => Promise<number> | number, command?: string): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (isHotplugError(e)) {
      const help = e.code === 'E_USAGE' ? `; see "hotplugd ${command !== undefined ? `${command} ` : ''}--help"` : '';
      io.stderr.write(hotplugErrorLine(e, help));
      return e.code === 'E_USAGE' ? EXIT.USAGE : EXIT.SYSTEM;
    }
    io.stderr.write(`${printable(`hotplugd: internal error: ${(e as Error).stack ?? String(e)}`)}\n`);
    return EXIT.SYSTEM;
  }
}

/** CLI text → byte string (one char per byte), as the index stores patterns. */
export function toBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/**
 * Index warnings, one line per file: how many lines were not used and the
 * first problem; a meta.pb that was passed over gets its own line. Control
 * bytes escaped (file names and contents come from disk).
 */
export function summarizeWarnings(index: ModuleIndex): string[] {
  const byFile = new Map<string, { count: number; first: { line: number; problem: string } }>();
  for (const w of index.warnings) {
    if (w.file === index.fallback?.file) continue;
    const e = byFile.get(w.file);
    if (e) e.count++;
    else byFile.set(w.file, { count: 1, first: w });
  }
  const lines = [...byFile].map(
    ([file, { count, first }]) =>
      printable(`${file}: ${count} line${count === 1 ? '' : 's'} not used (first${first.line > 0 ? ` at line ${first.line}` : ''}: ${first.problem})`),
  );
  const f = index.fallback;
  return f === undefined ? lines : [printable(`${f.file}: not used, depmod's files read instead: ${f.problem}`), ...lines];
}

/** The same, as log records: a passed-over meta.pb as its own record, then the lines skipped per file. */
export function logIndexWarnings(index: ModuleIndex, log: Log): void {
  const f = index.fallback;
  if (f !== undefined) log.warn({ file: f.file, code: f.code, problem: f.problem }, "meta.pb not used; depmod's files read instead");
  for (const w of summarizeWarnings(index).slice(f === undefined ? 0 : 1)) log.warn({ detail: w }, 'index lines skipped');
}
