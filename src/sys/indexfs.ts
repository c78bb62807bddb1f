/**
 * Reading an index and its configuration from the filesystem: the thin layer
 * over core/build-index.ts, core/meta.ts and core/config.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { indexFromDepmod } from '../core/build-index.js';
import { emptyConfig, type ModprobeConfig, parseCmdline, parseModprobeConf } from '../core/config.js';
import { type IndexParts, ModuleIndex } from '../core/index.js';
import { decodeMeta } from '../core/meta.js';
import { HotplugError } from '../errors.js';

/** kmod's search order; a file name in an earlier directory hides the same name later. */
export const DEFAULT_CONFIG_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/lib/modprobe.d', '/usr/lib/modprobe.d'];

export interface IndexLocation {
  /** Module directory (depmod output, and where module paths are relative to). */
  modulesDir: string;
  /** A meta.pb to use instead of the depmod files. */
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

/**
 * modprobe.d files in kmod's order (libkmod-config.c conf_files_list): sorted
 * by name, a name in an earlier directory hiding it in later ones — also
 * when it is a symlink to /dev/null, which is how a packaged file is masked.
 * In a directory kmod reads names ending in `.conf` or `.alias`, not hidden
 * ones, and never a subdirectory; a path that is itself a file is read
 * whatever its name (`modprobe -C FILE`).
 */
export function configFiles(dirs: readonly string[]): string[] {
  const chosen = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      if (!statSync(dir).isDirectory()) {
        const name = dir.slice(dir.lastIndexOf('/') + 1);
        if (!chosen.has(name)) chosen.set(name, dir);
        continue;
      }
      names = readdirSync(dir);
    } catch {
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

/** Load the index at `loc`: meta.pb when given, otherwise depmod's files. */
export function loadIndex(loc: IndexLocation): ModuleIndex {
  const config = loadConfig(loc.configDirs ?? DEFAULT_CONFIG_DIRS, loc.cmdline ?? '/proc/cmdline');
  if (loc.meta !== undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(loc.meta);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new HotplugError(code === 'ENOENT' ? 'E_INDEX_MISSING' : 'E_SYSTEM', `cannot read (${code ?? 'error'})`, {
        file: loc.meta,
        cause: e,
      });
    }
    return new ModuleIndex(decodeMeta(bytes, loc.meta), config);
  }
  return new ModuleIndex(depmodParts(loc.modulesDir), config);
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

