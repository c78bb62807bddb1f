/**
 * What every command shares: flag parsing with usage errors, the index
 * location flags, and turning errors into one line and an exit code.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { release } from 'node:os';
import { EXIT, HotplugError, isHotplugError } from '../errors.js';
import { DEFAULT_CONFIG_DIRS, type IndexLocation } from '../sys/indexfs.js';

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
} as const;

export const INDEX_HELP = `Index:
  --modules-dir DIR   module directory (default /lib/modules/$(uname -r)): its
                      meta.pb when depmod has not run since it was written,
                      otherwise its depmod files
  --meta FILE         read a Monogon-compatible meta.pb instead of depmod's files
                      (module paths stay relative to --modules-dir)
  --config-dir DIR    modprobe.d directory, which must exist; repeat for several;
                      '' for none (default: those of
                      ${DEFAULT_CONFIG_DIRS.join(' ')} that exist)
  --cmdline FILE      kernel command line for modprobe.blacklist= and module.param=,
                      which must be readable (default /proc/cmdline if present;
                      '' to ignore)`;

export function defaultModulesDir(): string {
  return `/lib/modules/${release()}`;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function indexLocation(v: Values): IndexLocation {
  const dirs = v['config-dir'] as string[] | undefined;
  return {
    modulesDir: (v['modules-dir'] as string | undefined) ?? defaultModulesDir(),
    meta: v.meta as string | undefined,
    configDirs: dirs && dirs.length > 0 ? dirs : undefined,
    cmdline: v.cmdline as string | undefined,
  };
}

/**
 * Index location: without --meta, the module directory's meta.pb when there is
 * one and depmod has not run since it was written (its modules.dep is not
 * newer), else depmod's files.
 */
export function resolveLocation(values: Values): IndexLocation {
  const loc = indexLocation(values);
  if (loc.meta !== undefined) return loc;
  const meta = join(loc.modulesDir, 'meta.pb');
  const dep = join(loc.modulesDir, 'modules.dep');
  if (!existsSync(meta)) return loc;
  if (existsSync(dep) && statSync(dep).mtimeMs > statSync(meta).mtimeMs) return loc;
  return { ...loc, meta };
}

/** parseArgs, with its errors turned into E_USAGE. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals: boolean,
): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals, strict: true });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new HotplugError('E_USAGE', (e as Error).message);
  }
}

/** Run a command body: errors become one line on stderr and a documented exit code. */
export async function runCommand(io: Io, body: () => Promise<number> | number): Promise<number> {
  try {
    return await body();
  } catch (e) {
    if (isHotplugError(e)) {
      io.stderr.write(`hotplugd: ${e.message} [${e.code}]\n`);
      return e.code === 'E_USAGE' ? EXIT.USAGE : EXIT.SYSTEM;
    }
    io.stderr.write(`hotplugd: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return EXIT.SYSTEM;
  }
}

/** CLI text → byte string (one char per byte), as the index stores patterns. */
export function toBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}
