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

export async function walkSysfs(sysfs: string, concurrency = 32): Promise<ColdplugResult> {
  const t0 = performance.now();
  const root = join(sysfs, 'devices');
  const errors: { path: string; code: string }[] = [];
  const deviceDirs: string[] = [];
  const dirs: string[] = [root];
  // Breadth-first listing, `concurrency` directories at a time.
  while (dirs.length > 0) {
    const batch = dirs.splice(0, dirs.length);
    const listed = await mapLimit(batch, concurrency, async (dir) => {
      try {
        return { dir, items: await readdir(dir, { withFileTypes: true }) };
      } catch (e) {
        errors.push({ path: dir, code: (e as NodeJS.ErrnoException).code ?? 'EIO' });
        return { dir, items: [] as Dirent[] };
      }
    });
    for (const { dir, items } of listed) {
      for (const d of items) {
        if (d.isDirectory()) dirs.push(join(dir, d.name));
        else if (d.name === 'uevent' && d.isFile()) deviceDirs.push(dir);
      }
    }
  }
  const found = await mapLimit(deviceDirs, concurrency, async (dir): Promise<ColdplugEntry | null> => {
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
    if (modalias === undefined || modalias === '') return null;
    return { devpath: dir.slice(sysfs.replace(/\/+$/, '').length), modalias };
  });
  return {
    devices: deviceDirs.length,
    entries: found.filter((e): e is ColdplugEntry => e !== null),
    errors,
    ms: Math.round((performance.now() - t0) * 10) / 10,
  };
}
