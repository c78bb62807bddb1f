/**
 * The seam between the load queue and the system: the queue speaks in
 * modules, the implementations (sys/kernel.ts; test fakes) in syscalls.
 */
import { constants } from 'node:os';

export interface LoadRequestForKernel {
  name: string;
  /** Absolute path of the module file. */
  path: string;
  /** Parameters, as modprobe joins them ("a=1 b=2"). */
  params: string;
}

export type LoadOutcome = { ok: true } | { ok: false; errno: number; code: string; message?: string };

/** What the kernel says about a module it knows: `live`, `coming` (loading) or `going` (unloading). */
export type ModuleState = 'live' | 'coming' | 'going';

export interface Kernel {
  /** Human name for logs: "finit_module", "dry-run", ... */
  readonly kind: string;
  /** Whether this kernel seam actually loads (false for dry-run). */
  readonly loads: boolean;
  /** Load one module; never throws for a kernel refusal (that is an outcome). */
  load(req: LoadRequestForKernel): Promise<LoadOutcome>;
  /** Modules the kernel has now (/proc/modules). */
  loadedModules(): Map<string, ModuleState>;
  /**
   * What the kernel says about one module now, as libkmod's
   * kmod_module_get_initstate reads it: SYSFS/module/NAME/initstate, a
   * directory without it being `coming` (kmod 30), undefined when the kernel
   * does not know the module. Asked before every decision, never cached, so a
   * module removed with rmmod is loaded again on its next request.
   */
  moduleState(name: string): ModuleState | undefined;
  /** Drop any state of its own (dry-run's "would have loaded"); called on reload. */
  forget?(): void;
}

/** errno names worth another attempt: the kernel or the machine was busy, not the module bad. */
export const TRANSIENT_ERRNOS: ReadonlySet<string> = new Set(['EAGAIN', 'EBUSY', 'ENOMEM', 'EINTR', 'ETIMEDOUT']);

/** The text of an initstate file -> state; undefined for anything else. */
export function parseInitstate(text: string): ModuleState | undefined {
  const t = text.trim();
  return t === 'live' || t === 'coming' || t === 'going' ? t : undefined;
}

/** A module name that can be a single sysfs path component. */
export function isSysfsName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0') && name.length <= 255;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** errno number -> name ("ENOENT"), or "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `E${errno}`;
}

export function errnoNumber(name: string): number {
  const n = (constants.errno as Record<string, number>)[name];
  if (n === undefined) throw new Error(`unknown errno name ${name}`);
  return n;
}

/** Parse /proc/modules text: "name size refs deps state addr" per line. */
export function parseProcModules(text: string): Map<string, ModuleState> {
  const out = new Map<string, ModuleState>();
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5 || f[0] === '') continue;
    const state = f[4] === 'Loading' ? 'coming' : f[4] === 'Unloading' ? 'going' : 'live';
    out.set(f[0]!, state);
  }
  return out;
}
