/**
 * What a user who can write a cache file can do with it: change a module's
 * path in the module table and recompute the CRC-32 (both public), so that
 * the file is intact and fresh and names another file. The new path is
 * padded to the old one's length ("./" and "/" components) so that no
 * length field changes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { crc32 } from '../../src/core/index/meta/checksum.js';

export function padPath(to: string, length: number): string {
  const slash = to.lastIndexOf('/');
  let out = to;
  while (out.length < length) out = out.slice(0, slash + 1) + (length - out.length >= 2 ? './' : '/') + out.slice(slash + 1);
  return out;
}

/** Rewrite module path `from` (a whole line of the module table's paths) as `to` in `file`; the result is checksummed again. */
export function forgeModulePath(file: string, from: string, to: string): string {
  const b = readFileSync(file);
  if (to.length > from.length) throw new Error('the new path must not be longer than the old one');
  const padded = padPath(to, from.length);
  const at = b.indexOf(Buffer.from(`\n${from}\n`));
  if (at < 0) throw new Error(`${from} is not a line of the module table`);
  b.write(padded, at + 1, 'latin1');
  const crcAt = b.length - 6;
  b.writeUInt32LE(crc32(b.subarray(0, crcAt)), crcAt + 2);
  writeFileSync(file, b);
  return padded;
}
