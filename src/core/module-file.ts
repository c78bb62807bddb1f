/**
 * Module file names: the suffixes kmod accepts (.ko, .ko.gz, .ko.xz,
 * .ko.zst) and what each is compressed with, and the module name a path
 * gives. The one place these are written; no imports beyond glob.ts, so the
 * index readers do not load the decompressors (decompress.ts) with them.
 */
import { underscores } from './glob.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | null;

/** The names a module file may end with (kmod's), and what each is compressed with. */
const MODULE_SUFFIXES: ReadonlyMap<string, Compression> = new Map([
  ['.ko', null],
  ['.ko.gz', 'gzip'],
  ['.ko.xz', 'xz'],
  ['.ko.zst', 'zstd'],
]);

/**
 * The module suffix `path` ends with, or undefined. (Each suffix has `.ko`
 * only at its start, so the last `.ko` in a module file's name starts it:
 * no regex, no loop; modules.dep has one path per dependency.)
 */
export function moduleSuffix(path: string): string | undefined {
  const at = path.lastIndexOf('.ko');
  if (at < 0) return undefined;
  const tail = path.length - at === 3 ? '.ko' : path.slice(at);
  return MODULE_SUFFIXES.has(tail) ? tail : undefined;
}

/** What a module file is compressed with, by its suffix (null: not compressed, or not a module file). */
export function compressionOf(path: string): Compression {
  const suffix = moduleSuffix(path);
  return suffix === undefined ? null : MODULE_SUFFIXES.get(suffix)!;
}

/** Whether `path` names a module file: a module suffix with a name before it. */
export function isModuleFile(path: string): boolean {
  const suffix = moduleSuffix(path);
  return suffix !== undefined && path.length - suffix.length > path.lastIndexOf('/') + 1;
}

/** Module name from a path: the basename without its module suffix, `-` as `_`; null when it names no module file. */
export function moduleNameFromPath(path: string): string | null {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const suffix = moduleSuffix(base);
  return suffix === undefined || base.length === suffix.length ? null : underscores(base.slice(0, -suffix.length));
}
