/**
 * Kernel implementations: the real one (finit_module / init_module through
 * koffi, on a worker thread so the event loop never blocks) and dry-run.
 */
import { closeSync, constants as fsConstants, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { libc } from './libc.js';
import { compressionOf, decompress, MAX_MODULE_BYTES } from '../core/decompress.js';
import { errnoName, isSysfsName, type Kernel, type LoadOutcome, type LoadRequestForKernel, type ModuleState, parseInitstate, parseProcModules } from '../core/kernel.js';
import { openRegularSync, readBounded } from './readfile.js';

const SYSCALLS: Record<string, { finit: number; init: number }> = {
  x64: { finit: 313, init: 175 },
  arm64: { finit: 273, init: 105 },
};

/** finit_module flag: the file is compressed, let the kernel decompress it (Linux >= 6.4). */
const MODULE_INIT_COMPRESSED_FILE = 4;

export interface SysPaths {
  procfs: string;
  sysfs: string;
}

/** /proc/modules as a map; empty when the file is absent (no module support). */
export function readLoadedModules(paths: SysPaths): Map<string, ModuleState> {
  try {
    return parseProcModules(readFileSync(join(paths.procfs, 'modules'), 'latin1'));
  } catch {
    return new Map();
  }
}

/**
 * SYSFS/module/NAME/initstate, as kmod 30's kmod_module_get_initstate reads
 * it: its text (at most 32 bytes read, opened non-blocking); a module
 * directory without it is `coming`; no directory (or one that vanished
 * meanwhile, or anything unreadable) is undefined.
 */
export function readModuleState(sysfs: string, name: string): ModuleState | undefined {
  if (!isSysfsName(name)) return undefined;
  const dir = join(sysfs, 'module', name);
  let fd: number;
  try {
    fd = openSync(join(dir, 'initstate'), fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch {
    try {
      return statSync(dir).isDirectory() ? 'coming' : undefined;
    } catch {
      return undefined;
    }
  }
  try {
    const buf = Buffer.alloc(32);
    const n = readSync(fd, buf, 0, buf.length, null);
    return parseInitstate(buf.toString('latin1', 0, n));
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Why this machine cannot load modules, or null when it can. */
export function cannotLoadReason(paths: SysPaths): string | null {
  if (!SYSCALLS[arch()]) return `no finit_module syscall number known for ${arch()}`;
  if (process.getuid?.() !== 0) return 'not running as root';
  if (!existsSync(join(paths.procfs, 'modules'))) return `${join(paths.procfs, 'modules')} is absent: this kernel has no loadable-module support`;
  return null;
}

type AsyncSyscall = {
  async: (...args: unknown[]) => void;
};

interface Syscalls {
  finit: AsyncSyscall;
  init: AsyncSyscall;
}

let syscalls: Syscalls | undefined;
function bind(): Syscalls {
  if (syscalls) return syscalls;
  const c = libc();
  // syscall(2) is variadic in C; declared with fixed arguments, which is how
  // the x86-64 and arm64 ABIs pass integer and pointer arguments anyway.
  syscalls = {
    finit: c.func('syscall', 'long', ['long', 'int', 'str', 'int']) as unknown as AsyncSyscall,
    init: c.func('syscall', 'long', ['long', 'void *', 'unsigned long', 'str']) as unknown as AsyncSyscall,
  };
  return syscalls;
}

function call(fn: AsyncSyscall, args: unknown[]): Promise<{ ret: number; errno: number }> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, ret: number | bigint) => {
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      // koffi.errno() inside the callback is the errno of this call (its worker thread's).
      else resolve({ ret: Number(ret), errno: koffi.errno() });
    });
  });
}

/** Loads for real: finit_module(2), or init_module(2) after decompressing when the kernel cannot. */
export class SyscallKernel implements Kernel {
  readonly kind = 'finit_module';
  readonly loads = true;
  private readonly nr = SYSCALLS[arch()] ?? SYSCALLS.x64!;

  constructor(private readonly paths: SysPaths) {}

  loadedModules(): Map<string, ModuleState> {
    return readLoadedModules(this.paths);
  }

  moduleState(name: string): ModuleState | undefined {
    return readModuleState(this.paths.sysfs, name);
  }

  /** Compression the kernel decompresses itself (/sys/module/compression), if any. */
  private kernelCompression(): string | null {
    try {
      return readFileSync(join(this.paths.sysfs, 'module/compression'), 'latin1').trim();
    } catch {
      return null;
    }
  }

  async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
    const kind = compressionOf(req.path);
    const s = bind();
    if (kind === null || this.kernelCompression() === kind) {
      // A regular file only (a FIFO or device there is refused, never handed to the kernel).
      let fd: number;
      try {
        fd = openRegularSync(req.path);
      } catch (e) {
        return cannotRead(e);
      }
      try {
        const r = await call(s.finit, [this.nr.finit, fd, req.params, kind === null ? 0 : MODULE_INIT_COMPRESSED_FILE]);
        return r.ret === 0 ? { ok: true } : { ok: false, errno: r.errno, code: errnoName(r.errno) };
      } finally {
        closeSync(fd);
      }
    }
    let raw: Uint8Array;
    try {
      // A compressed module larger than the decompressed cap cannot be a module.
      raw = await readBounded(req.path, MAX_MODULE_BYTES);
    } catch (e) {
      return cannotRead(e);
    }
    let image: Uint8Array;
    try {
      image = await decompress(raw, kind, req.path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return { ok: false, errno: 0, code: err.code ?? 'E_DECOMPRESS', message: err.message };
    }
    const r = await call(s.init, [this.nr.init, image, image.length, req.params]);
    return r.ret === 0 ? { ok: true } : { ok: false, errno: r.errno, code: errnoName(r.errno) };
  }
}

/** A module file that cannot be opened or read: errno errors keep their errno, ours (E_INPUT, E_TOO_LARGE) their code. */
function cannotRead(e: unknown): LoadOutcome {
  const err = e as NodeJS.ErrnoException;
  if (err.errno === undefined) return { ok: false, errno: 0, code: err.code ?? 'EIO', message: err.message };
  return { ok: false, errno: -err.errno, code: err.code ?? 'EIO', message: `cannot open module file (${err.code})` };
}

/**
 * Records what it would load; nothing reaches the kernel. Its module state is
 * the real kernel's, plus what it "loaded" since the last forget() (bounded
 * by the index's module count: only indexed names are loaded).
 */
export class DryRunKernel implements Kernel {
  readonly kind = 'dry-run';
  readonly loads = false;
  private readonly wouldHave = new Set<string>();

  constructor(private readonly paths: SysPaths) {}

  loadedModules(): Map<string, ModuleState> {
    const m = readLoadedModules(this.paths);
    for (const n of this.wouldHave) m.set(n, 'live');
    return m;
  }

  moduleState(name: string): ModuleState | undefined {
    return this.wouldHave.has(name) ? 'live' : readModuleState(this.paths.sysfs, name);
  }

  /** Drop what it would have loaded (a reload starts from the real state again). */
  forget(): void {
    this.wouldHave.clear();
  }

  async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
    this.wouldHave.add(req.name);
    return { ok: true };
  }
}
