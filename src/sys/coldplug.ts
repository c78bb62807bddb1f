/**
 * The coldplug walk: every device under SYSFS/devices that announces a
 * MODALIAS, read from its `uevent` file (some buses, e.g. MDIO, have no
 * `modalias` file) or else its `modalias` file. Symlinks are not followed
 * (sysfs is full of them: subsystem, driver, device links). A device that
 * vanishes or cannot be read mid-walk is counted and skipped.
 */
import { type Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mapLimit } from './concurrency.js';

export interface ColdplugEntry {
  /** Kernel devpath: "/devices/...". */
  devpath: string;
  modalias: string;
}

export interface ColdplugResult {
  /** Directories with a uevent file. */
  devices: number;
  entries: ColdplugEntry[];
  errors: { path: string; code: string }[];
  ms: number;
}

function modaliasFromUevent(text: string): string | undefined {
  for (const line of text.split('\n')) if (line.startsWith('MODALIAS=')) return line.slice(9);
  return undefined;
}

/**
 * Walk SYSFS/devices level by level; each device found is also handed to
 * `onEntry` at once, so that loading can start while the walk goes on.
 */
export async function walkSysfs(sysfs: string, onEntry?: (e: ColdplugEntry) => void, concurrency = 32): Promise<ColdplugResult> {
  const t0 = performance.now();
  const root = join(sysfs, 'devices');
  const prefix = sysfs.replace(/\/+$/, '').length;
  const errors: { path: string; code: string }[] = [];
  const entries: ColdplugEntry[] = [];
  let devices = 0;
  let dirs: string[] = [root];
  while (dirs.length > 0) {
    const listed = await mapLimit(dirs, concurrency, async (dir) => {
      try {
        return { dir, items: await readdir(dir, { withFileTypes: true }) };
      } catch (e) {
        errors.push({ path: dir, code: (e as NodeJS.ErrnoException).code ?? 'EIO' });
        return { dir, items: [] as Dirent[] };
      }
    });
    const next: string[] = [];
    const deviceDirs: string[] = [];
    for (const { dir, items } of listed) {
      for (const d of items) {
        if (d.isDirectory()) next.push(join(dir, d.name));
        else if (d.name === 'uevent' && d.isFile()) deviceDirs.push(dir);
      }
    }
    devices += deviceDirs.length;
    const found = await mapLimit(deviceDirs, concurrency, (dir) => readModalias(dir, errors));
    found.forEach((modalias, i) => {
      if (modalias === null) return;
      const e = { devpath: deviceDirs[i]!.slice(prefix), modalias };
      entries.push(e);
      onEntry?.(e);
    });
    dirs = next;
  }
  return { devices, entries, errors, ms: Math.round((performance.now() - t0) * 10) / 10 };
}

/** MODALIAS of one device: its uevent file, else its modalias file; null when it has none. */
async function readModalias(dir: string, errors: { path: string; code: string }[]): Promise<string | null> {
  let modalias: string | undefined;
  try {
    modalias = modaliasFromUevent(await readFile(join(dir, 'uevent'), 'latin1'));
  } catch (e) {
    errors.push({ path: join(dir, 'uevent'), code: (e as NodeJS.ErrnoException).code ?? 'EIO' });
  }
  if (modalias === undefined) {
    try {
      modalias = (await readFile(join(dir, 'modalias'), 'latin1')).replace(/\n$/, '');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code !== 'ENOENT') errors.push({ path: join(dir, 'modalias'), code });
    }
  }
  return modalias === undefined || modalias === '' ? null : modalias;
}
