/**
 * `hotplugd trigger`: make the kernel announce devices again, as
 * `udevadm trigger --type=devices --action=add` does, by writing the action
 * to each device's `uevent` attribute under SYSFS/devices.
 *
 * The walk follows the coldplug walker's rules (coldplug.ts): directories are
 * entered only as directories (symlinks are never followed, so sysfs' link
 * loops cannot trap it), a `uevent` entry counts only when it is a regular
 * file, and anything else there is reported, not fatal. Each write opens the
 * file write-only with O_NOFOLLOW (a symlink is not an attribute) and
 * O_NONBLOCK (a FIFO put there fails at once instead of waiting for a reader)
 * and without O_TRUNC (sysfs ignores it; elsewhere it would empty a file
 * before the check), then checks with fstat that it is a regular file before
 * writing a byte. Devices are written one at a time, parents before
 * children (sorted by path), as udevadm does.
 */
import { constants } from 'node:fs';
import { open, readlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { HotplugError } from '../errors.js';
import { type ColdplugError, walkDeviceDirs } from './coldplug.js';
import { mapLimit } from './concurrency.js';

export type TriggerAction = 'add' | 'change';
export const TRIGGER_ACTIONS: readonly TriggerAction[] = ['add', 'change'];

export interface TriggerOptions {
  action: TriggerAction;
  /** Only devices whose `subsystem` link names one of these; empty or absent: every device. */
  subsystems?: readonly string[];
  /** Write nothing: report the files that would be written. */
  dryRun?: boolean;
  /** Called for each device, in order, after its write (or in a dry run, instead of it). */
  onDevice?: (d: TriggerDevice) => void;
  /** readlink calls in flight for --subsystem (default 32). */
  concurrency?: number;
}

export interface TriggerDevice {
  /** SYSFS/devices/.../uevent */
  file: string;
  /** Undefined when written (or would be); else the errno name or E_INPUT. */
  code?: string;
}

export interface TriggerResult {
  /** Devices selected (with a regular `uevent` and, with --subsystem, a matching subsystem). */
  devices: number;
  written: number;
  failed: TriggerDevice[];
  /** Entries that could not be walked or are not what sysfs has there. */
  unreadable: ColdplugError[];
}

/** Errnos that say "this process may not write here": the same for every device. */
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS']);

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

/**
 * Every directory under `root` with a regular `uevent` file, sorted (parents
 * first): the coldplug walker's traversal. Unreadable directories and
 * non-regular `uevent` entries go to `errors`.
 */
export async function deviceDirs(root: string, errors: ColdplugError[]): Promise<string[]> {
  const found: string[] = [];
  await walkDeviceDirs(root, errors, {}, (dir) => found.push(dir));
  return found.sort();
}

/** The basename of DIR/subsystem (a symlink in sysfs), or undefined when there is none. */
async function subsystemOf(dir: string): Promise<string | undefined> {
  try {
    return basename(await readlink(join(dir, 'subsystem')));
  } catch {
    return undefined;
  }
}

/**
 * Write `action` to one uevent file: O_WRONLY|O_NOFOLLOW|O_NONBLOCK, no
 * O_TRUNC, so that opening changes nothing: a file put in the tree's place
 * (a directory swapped for a symlink during the walk) is not emptied, and a
 * descriptor that is not a regular file is closed unwritten (E_INPUT). The
 * action is written at offset 0 (a regular file that is not sysfs' keeps any
 * longer contents past it). Errors are Node's, code intact (ENXIO for a FIFO).
 */
export async function writeUevent(file: string, action: TriggerAction): Promise<void> {
  const fh = await open(file, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    if (!(await fh.stat()).isFile()) throw new HotplugError('E_INPUT', 'not a regular file: not written', { file });
    await fh.write(`${action}\n`);
  } finally {
    await fh.close();
  }
}

/**
 * Trigger every selected device under SYSFS/devices. Rejects with E_SYSTEM
 * when SYSFS/devices cannot be listed, or when the first write is refused
 * for permission (EACCES, EPERM, EROFS: writing uevent files needs root and
 * a writable /sys); a write refused later, or failing otherwise, is counted.
 */
export async function triggerDevices(sysfs: string, opts: TriggerOptions): Promise<TriggerResult> {
  const root = join(sysfs, 'devices');
  const unreadable: ColdplugError[] = [];
  let dirs = await deviceDirs(root, unreadable);
  if (unreadable.some((e) => e.path === root)) {
    throw new HotplugError('E_SYSTEM', `cannot list the devices (${unreadable.find((e) => e.path === root)!.code})`, { file: root });
  }
  const wanted = opts.subsystems !== undefined && opts.subsystems.length > 0 ? new Set(opts.subsystems) : undefined;
  if (wanted !== undefined) {
    const subsystems = await mapLimit(dirs, opts.concurrency ?? 32, subsystemOf);
    dirs = dirs.filter((_, i) => wanted.has(subsystems[i] ?? ''));
  }
  const result: TriggerResult = { devices: dirs.length, written: 0, failed: [], unreadable };
  for (const dir of dirs) {
    const file = join(dir, 'uevent');
    if (opts.dryRun) {
      opts.onDevice?.({ file });
      continue;
    }
    try {
      await writeUevent(file, opts.action);
      result.written++;
      opts.onDevice?.({ file });
    } catch (e) {
      const code = e instanceof HotplugError ? e.code : errorCode(e);
      if (result.written === 0 && DENIED.has(code)) {
        const why = code === 'EROFS' ? 'sysfs is mounted read-only here' : 'writing uevent files needs root';
        throw new HotplugError('E_SYSTEM', `cannot write ${JSON.stringify(opts.action)} (${code}): ${why}`, { file, cause: e });
      }
      const d = { file, code };
      result.failed.push(d);
      opts.onDevice?.(d);
    }
  }
  return result;
}
