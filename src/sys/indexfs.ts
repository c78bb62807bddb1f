/**
 * Reading an index and its configuration from the filesystem: the thin layer
 * over core/build-index.ts, core/meta.ts and core/config.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { indexFromDepmod } from '../core/build-index.js';
import { emptyConfig, type ModprobeConfig, parseCmdline, parseModprobeConf } from '../core/config.js';
import { type IndexKind, type IndexParts, ModuleIndex } from '../core/index.js';
import { decodeMeta } from '../core/meta.js';
import { HotplugError, isHotplugError } from '../errors.js';

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
  configDirs?: string[] | undefined;
  /** Kernel command line file ('' to ignore). */
  cmdline?: string | undefined;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HotplugError(code === 'ENOENT' ? 'E_INDEX_MISSING' : 'E_SYSTEM', `cannot read (${code ?? (e as Error).message})`, {
      file,
      cause: e,
    });
  }
}

function readOptional(file: string): string | undefined {
  return existsSync(file) ? readText(file) : undefined;
}

/** modprobe.d files in kmod's order: sorted by name, earlier directories winning. */
export function configFiles(dirs: readonly string[]): string[] {
  const chosen = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.endsWith('.conf') || chosen.has(name)) continue;
      const full = join(dir, name);
      try {
        if (!statSync(full).isFile()) continue;
      } catch {
        continue;
      }
      chosen.set(name, full);
    }
  }
  return [...chosen.keys()].sort().map((n) => chosen.get(n)!);
}

export function loadConfig(configDirs: readonly string[], cmdlineFile: string): ModprobeConfig {
  const cfg = emptyConfig();
  if (cmdlineFile !== '') {
    const text = readOptional(cmdlineFile);
    if (text !== undefined) parseCmdline(text, cfg);
  }
  for (const file of configFiles(configDirs)) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch (e) {
      cfg.warnings.push({ file, line: 0, problem: `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})` });
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

function readMetaFile(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HotplugError(code === 'ENOENT' ? 'E_INDEX_MISSING' : 'E_SYSTEM', `cannot read (${code ?? 'error'})`, { file, cause: e });
  }
}

/**
 * Load the index at `loc` from the source chooseIndex picks now. A meta.pb
 * that was chosen automatically but cannot be read or decoded does not
 * disable a good module directory: depmod's files are read instead, and the
 * index says so (`fallback`, and a warning in `warnings`). An explicit --meta
 * that fails is an error, as is a fallback with no depmod files either (then
 * the meta.pb's own error is the one thrown).
 */
export function loadIndex(loc: IndexLocation): ModuleIndex {
  const config = loadConfig(loc.configDirs ?? DEFAULT_CONFIG_DIRS, loc.cmdline ?? '/proc/cmdline');
  const choice = chooseIndex(loc);
  if (choice.kind === 'depmod') return new ModuleIndex(depmodParts(loc.modulesDir), config);
  let metaError: HotplugError;
  try {
    return new ModuleIndex(decodeMeta(readMetaFile(choice.file), choice.file), config);
  } catch (e) {
    if (choice.explicit || !isHotplugError(e)) throw e;
    metaError = e;
  }
  let parts: IndexParts;
  try {
    parts = depmodParts(loc.modulesDir);
  } catch {
    throw metaError;
  }
  const prefix = `${choice.file}: `;
  const why = `${metaError.message.startsWith(prefix) ? metaError.message.slice(prefix.length) : metaError.message} [${metaError.code}]`;
  const fallback = { file: choice.file, code: metaError.code, problem: why };
  parts.warnings.unshift({ file: choice.file, line: 0, problem: `not used, depmod's files read instead: ${why}` });
  return new ModuleIndex({ ...parts, fallback }, config);
}

/** Index parts from depmod's files in `dir`. */
export function depmodParts(dir: string): IndexParts {
  if (!existsSync(join(dir, 'modules.dep')) || !existsSync(join(dir, 'modules.alias'))) {
    throw new HotplugError('E_INDEX_MISSING', 'no depmod index here (modules.dep and modules.alias); run depmod, or pass --modules-dir or --meta', {
      file: dir,
    });
  }
  return indexFromDepmod({
    dir,
    alias: readText(join(dir, 'modules.alias')),
    dep: readText(join(dir, 'modules.dep')),
    builtin: readOptional(join(dir, 'modules.builtin')),
    softdep: readOptional(join(dir, 'modules.softdep')),
    builtinModinfo: readOptional(join(dir, 'modules.builtin.modinfo')),
    symbols: () => readOptional(join(dir, 'modules.symbols')),
  });
}

