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
 * them can block a libuv thread or take unbounded memory.
 */
import { type Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mapLimit } from './concurrency.js';
import { readBounded, SYSFS_ATTR_MAX } from './readfile.js';

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

/**
 * Walk SYSFS/devices level by level; each device found is also handed to
 * `onEntry` at once, so that loading can start while the walk goes on. At
 * most `concurrency` reads or readdirs are in flight.
 *
 * `signal`: once aborted, no new readdir or read starts and no more entries
 * are handed out; the walk resolves (never rejects for it) with what it had,
 * `aborted: true`, as soon as the reads in flight (bounded, regular files
 * only) finish.
 */
export async function walkSysfs(sysfs: string, onEntry?: (e: ColdplugEntry) => void, concurrency = 32, signal?: AbortSignal): Promise<ColdplugResult> {
  const t0 = performance.now();
  const root = join(sysfs, 'devices');
  const prefix = sysfs.replace(/\/+$/, '').length;
  const errors: ColdplugError[] = [];
  const entries: ColdplugEntry[] = [];
  const stopped = (): boolean => signal?.aborted === true;
  let devices = 0;
  let dirs: string[] = [root];
  while (dirs.length > 0 && !stopped()) {
    const listed = await mapLimit(dirs, concurrency, async (dir) => {
      if (stopped()) return { dir, items: [] as Dirent[] };
      try {
        return { dir, items: await readdir(dir, { withFileTypes: true }) };
      } catch (e) {
        errors.push({ path: dir, code: errorCode(e) });
        return { dir, items: [] as Dirent[] };
      }
    });
    const next: string[] = [];
    const deviceDirs: string[] = [];
    for (const { dir, items } of listed) {
      for (const d of items) {
        if (d.name === 'uevent') {
          // In sysfs `uevent` is always an attribute; anything else there is reported, not walked.
          if (d.isFile()) deviceDirs.push(dir);
          else errors.push({ path: join(dir, d.name), code: 'E_INPUT' });
        } else if (d.isDirectory()) next.push(join(dir, d.name));
      }
    }
    devices += deviceDirs.length;
    const found = await mapLimit(deviceDirs, concurrency, (dir) => (stopped() ? Promise.resolve(null) : readModalias(dir, errors)));
    found.forEach((modalias, i) => {
      if (modalias === null || stopped()) return;
      const e = { devpath: deviceDirs[i]!.slice(prefix), modalias };
      entries.push(e);
      onEntry?.(e);
    });
    dirs = next;
  }
  return { devices, entries, errors, ms: Math.round((performance.now() - t0) * 10) / 10, aborted: stopped() };
}

/** The MODALIAS of the device at DEVPATH (as the walk reads it), or undefined when it has none or cannot be read. */
export async function deviceModalias(sysfs: string, devpath: string): Promise<string | undefined> {
  return (await readModalias(join(sysfs, devpath), [])) ?? undefined;
}

/** MODALIAS of one device: its uevent file, else its modalias file; null when it has none. */
async function readModalias(dir: string, errors: ColdplugError[]): Promise<string | null> {
  let modalias: string | undefined;
  try {
    modalias = modaliasFromUevent(await readAttr(join(dir, 'uevent')));
  } catch (e) {
    errors.push({ path: join(dir, 'uevent'), code: errorCode(e) });
  }
  if (modalias === undefined) {
    try {
      modalias = (await readAttr(join(dir, 'modalias'))).replace(/\n$/, '');
    } catch (e) {
      const code = errorCode(e);
      if (code !== 'ENOENT') errors.push({ path: join(dir, 'modalias'), code });
    }
  }
  return modalias === undefined || modalias === '' ? null : modalias;
}

/** One sysfs attribute: a regular file, not through a symlink, at most SYSFS_ATTR_MAX bytes. */
async function readAttr(file: string): Promise<string> {
  return (await readBounded(file, SYSFS_ATTR_MAX, { noFollow: true })).toString('latin1');
}
