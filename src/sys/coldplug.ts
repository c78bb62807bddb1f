/**
 * The coldplug walk: every device under SYSFS/devices that announces a
 * MODALIAS, read from its `uevent` file (some buses, e.g. MDIO, have no
 * `modalias` file) or else its `modalias` file. Symlinks are not followed
 * (sysfs is full of them: subsystem, driver, device links). A device that
 * vanishes or cannot be read mid-walk is counted and skipped.
 *
 * Every `uevent`/`modalias` is read with the bounded reader (readfile.ts):
 * regular files only, O_NOFOLLOW, at most SYSFS_ATTR_MAX bytes. A FIFO, a
 * device, a symlink or an oversized file there is counted in `errors` with a
 * code saying why (E_INPUT, ELOOP, E_TOO_LARGE) and the walk goes on: none of
 * them can block the walk or take unbounded memory.
 */
import { type Dirent, readdirSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { readBoundedSync, SYSFS_ATTR_MAX } from './readfile.js';

export interface ColdplugEntry {
  /** Kernel devpath: "/devices/...". */
  devpath: string;
  modalias: string;
}

export interface ColdplugError {
  path: string;
  /** errno name (ENOENT, ELOOP, ...) or our code (E_INPUT: not a regular file; E_TOO_LARGE: past the cap). */
  code: string;
}

export interface ColdplugResult {
  /** Directories with a uevent file. */
  devices: number;
  entries: ColdplugEntry[];
  errors: ColdplugError[];
  ms: number;
  /** True when the walk was stopped by its AbortSignal: entries and devices are partial (optional so that fakes need not set it). */
  aborted?: boolean;
}

function modaliasFromUevent(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('MODALIAS=')) return line.slice(9);
  return undefined;
}

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

export interface WalkOptions {
  /** Handed each device found at once, so that loading can start while the walk goes on. */
  onEntry?: (e: ColdplugEntry) => void;
  /** Once aborted: no more directories, no more entries; the walk resolves with what it had. */
  signal?: AbortSignal;
  /** Longest stretch of synchronous work before yielding to the event loop (default 8 ms). */
  sliceMs?: number;
}

/**
 * Walk SYSFS/devices level by level (breadth first, readdir order: the same
 * order every time), handing each device with a MODALIAS to `onEntry` as it
 * is found.
 *
 * The work is synchronous, in slices of at most `sliceMs`, with a yield to
 * the event loop between slices (uevents, finished loads and signals are
 * handled there). Synchronous calls, because the walk is thousands of tiny
 * sysfs operations: one readdir per directory, one bounded read per device.
 * Measured on this repository's 2-core machine, over its /sys (958
 * directories, 411 devices): ~25 ms this way, 120-190 ms as promises on
 * libuv's thread pool, where each operation pays a thread hand-off and a
 * promise; under emulation (the boot benchmark's VM) the difference is
 * seconds. No call here can block: directories are only read, attributes
 * are opened O_NONBLOCK | O_NOFOLLOW and read only when fstat says regular.
 *
 * `onEntry` is never called before the first turn of the event loop after
 * the call. `signal`: checked between directories and before each entry is handed
 * out; once aborted the walk resolves (never rejects for it) with what it
 * had, `aborted: true`.
 */
export async function walkSysfs(sysfs: string, opts: WalkOptions = {}): Promise<ColdplugResult> {
  const { onEntry } = opts;
  const t0 = performance.now();
  const prefix = sysfs.replace(/\/+$/, '').length;
  const errors: ColdplugError[] = [];
  const entries: ColdplugEntry[] = [];
  let devices = 0;
  const aborted = await walkDeviceDirs(join(sysfs, 'devices'), errors, opts, (dir) => {
    devices++;
    const modalias = readModalias(dir, errors);
    if (modalias === null) return;
    const e = { devpath: dir.slice(prefix), modalias };
    entries.push(e);
    onEntry?.(e);
  });
  return { devices, entries, errors, ms: Math.round((performance.now() - t0) * 10) / 10, aborted };
}

/**
 * The traversal under walkSysfs and `hotplugd trigger`: every directory under
 * `root` (breadth first, readdir order) with a regular `uevent` entry goes to
 * `onDevice`, synchronously, in slices (see walkSysfs). Directories are
 * entered only as directories, never through symlinks. An unreadable
 * directory or a `uevent` that is not a regular file goes to `errors`.
 * Resolves true when stopped by `opts.signal`.
 */
export async function walkDeviceDirs(root: string, errors: ColdplugError[], opts: Pick<WalkOptions, 'signal' | 'sliceMs'>, onDevice: (dir: string) => void): Promise<boolean> {
  const { signal } = opts;
  const sliceMs = opts.sliceMs ?? 8;
  const stopped = (): boolean => signal?.aborted === true;
  // Breadth first: a queue of directories, consumed from `head`.
  const queue: string[] = [root];
  let head = 0;
  // The first slice too starts from the event loop, never inside the caller's
  // synchronous code: the daemon starts the walk, then builds the queue that
  // onEntry feeds.
  let sliceStart = -Infinity;
  while (head < queue.length && !stopped()) {
    if (performance.now() - sliceStart >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
      if (stopped()) break;
    }
    const dir = queue[head]!;
    queue[head++] = ''; // the walked part of the queue holds no memory
    let items: Dirent[];
    try {
      items = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      errors.push({ path: dir, code: errorCode(e) });
      continue;
    }
    let device = false;
    for (const d of items) {
      if (d.name === 'uevent') {
        // In sysfs `uevent` is always an attribute; anything else there is reported, not walked.
        if (d.isFile()) device = true;
        else errors.push({ path: join(dir, d.name), code: 'E_INPUT' });
      } else if (d.isDirectory()) queue.push(join(dir, d.name));
    }
    if (device) onDevice(dir);
  }
  return stopped();
}

/** The MODALIAS of the device at DEVPATH (as the walk reads it), or undefined when it has none or cannot be read. */
/**
 * The devpath (`/devices/...`) a path in sysfs names, as `udevadm info`
 * takes one: `SYSFS/devices/...` or a device link such as
 * `SYSFS/class/net/eth0` or `SYSFS/bus/pci/devices/0000:00:01.0`, resolved
 * with realpath and kept only when it lands under SYSFS/devices. Undefined
 * for anything else (a devpath, a modalias, a module name, a path outside).
 */
export async function devpathOfSysfsPath(sysfs: string, path: string): Promise<string | undefined> {
  const root = resolve(sysfs);
  if (!path.startsWith(`${root}/`)) return undefined;
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    real = resolve(path); // a device that is gone: its path as written
  }
  let realRoot = root;
  try {
    realRoot = await realpath(root);
  } catch {
    // keep it as given
  }
  for (const r of [realRoot, root]) {
    if (real.startsWith(`${r}/devices/`)) return real.slice(r.length);
  }
  return undefined;
}

export async function deviceModalias(sysfs: string, devpath: string): Promise<string | undefined> {
  return (await readModalias(join(sysfs, devpath), [])) ?? undefined;
}

/** MODALIAS of one device: its uevent file, else its modalias file; null when it has none. */
function readModalias(dir: string, errors: ColdplugError[]): string | null {
  let modalias: string | undefined;
  try {
    modalias = modaliasFromUevent(readAttr(join(dir, 'uevent')));
  } catch (e) {
    errors.push({ path: join(dir, 'uevent'), code: errorCode(e) });
  }
  if (modalias === undefined) {
    try {
      modalias = readAttr(join(dir, 'modalias')).replace(/\n$/, '');
    } catch (e) {
      const code = errorCode(e);
      if (code !== 'ENOENT') errors.push({ path: join(dir, 'modalias'), code });
    }
  }
  return modalias === undefined || modalias === '' ? null : modalias;
}

/** One sysfs attribute: a regular file, not through a symlink, at most SYSFS_ATTR_MAX bytes. */
function readAttr(file: string): string {
  return readBoundedSync(file, SYSFS_ATTR_MAX, { noFollow: true }).toString('latin1');
}
