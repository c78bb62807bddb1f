/**
 * Replace a file atomically: readers see the old contents or the new ones,
 * never a part (a half-written meta.pb newer than modules.dep would be chosen
 * over depmod's good files). Write a temporary file in the same directory,
 * fsync it, rename it over the target, fsync the directory so the rename
 * survives a crash. On any failure the temporary file is removed and the
 * target is left as it was.
 */
import * as fs from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HotplugError } from '../errors.js';

/** The calls used, injectable so that tests can make one fail (ENOSPC). */
export interface AtomicFs {
  openSync(path: string, flags: string | number, mode?: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
}

export function writeFileAtomic(file: string, bytes: Uint8Array, ops: AtomicFs = fs, mode = 0o644): void {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  let created = false;
  try {
    fd = ops.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
    created = true;
    for (let off = 0; off < bytes.length; ) off += ops.writeSync(fd, bytes, off, bytes.length - off);
    ops.fsyncSync(fd);
    ops.closeSync(fd);
    fd = undefined;
    ops.renameSync(tmp, file);
    created = false;
  } catch (e) {
    if (fd !== undefined) {
      try {
        ops.closeSync(fd);
      } catch {
        // already failing; the first error is the one reported
      }
    }
    if (created) {
      try {
        ops.unlinkSync(tmp);
      } catch {
        // nothing more to do: the target is untouched either way
      }
    }
    throw new HotplugError('E_SYSTEM', `cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the file is unchanged`, {
      file,
      cause: e,
    });
  }
  // The new contents are in place; make the rename itself durable.
  let dfd: number | undefined;
  try {
    dfd = ops.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    ops.fsyncSync(dfd);
  } catch (e) {
    // File systems that cannot sync a directory say EINVAL: nothing to wait for.
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOTSUP') return;
    throw new HotplugError('E_SYSTEM', `written, but cannot sync its directory (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { file, cause: e });
  } finally {
    if (dfd !== undefined) ops.closeSync(dfd);
  }
}
