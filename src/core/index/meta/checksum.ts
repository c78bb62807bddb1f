/**
 * meta.pb's integrity field, always the last bytes of a file hotplugd writes,
 * verified before anything is parsed; a mismatch is refused. Files without
 * one (Monogon's) are still read.
 *
 * - Meta.crc32 (field 109, fixed32; written since cache format 2): the
 *   CRC-32 (zlib's, IEEE 802.3) of every byte before it, 6 bytes: tag ed 06
 *   and the CRC little-endian. A CRC detects every single-bit error and
 *   every burst of up to 32 bits in a message of any length, and other
 *   damage but for a chance of 2^-32: it guards against damage (a torn
 *   write, a bad disk, a stray edit), which is what this field is for. It
 *   is no defence against someone who writes the file on purpose — neither
 *   was the SHA-256 before it, which anyone writing the file can compute
 *   too. zlib's CRC-32 is ~1.5 ms for a 7 MB index cache here, SHA-256
 *   ~4.5 ms plus ~3 ms to load node:crypto — ~25 times that under emulation.
 * - Meta.checksum (field 106, bytes): the SHA-256 of every byte before it,
 *   35 bytes (tag d2 06, length 20, digest), as older hotplugd wrote it:
 *   still verified, so their meta.pb files keep being read.
 */
import { createRequire } from 'node:module';
import { corrupt } from './wire.js';

/** Meta.crc32 (field 109, wire type 5): its tag as a varint. */
const CRC_HEAD = [0xed, 0x06];
export const CRC_LEN = CRC_HEAD.length + 4;
/** Meta.checksum (field 106, bytes): its tag as a varint, then the length 32. */
const SHA_HEAD = [0xd2, 0x06, 0x20];
export const SHA_LEN = SHA_HEAD.length + 32;

// Built-in modules loaded on first use, not at import: each costs ms of
// start-up, and a command that never verifies a checksum needs neither.
const require = createRequire(import.meta.url);

/**
 * SHA-256, with node:crypto loaded on first use: start-up from the index
 * cache does not need it (see the file comment).
 */
export function sha256(bytes: Uint8Array): Buffer {
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return createHash('sha256').update(bytes).digest();
}

let table: Int32Array | undefined;

/** CRC-32 in JavaScript, for runtimes whose zlib has no crc32 (Node < 20.15; exported for its test). */
export function crc32Js(bytes: Uint8Array): number {
  if (table === undefined) {
    table = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c;
    }
  }
  let crc = -1;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}

/** zlib's CRC-32 of `bytes` (node:zlib's native one where the runtime has it). */
export function crc32(bytes: Uint8Array): number {
  const native = (require('node:zlib') as { crc32?: (data: Uint8Array) => number }).crc32;
  return native !== undefined ? native(bytes) : crc32Js(bytes);
}

/** Append the checksum field: Meta.crc32 of every byte before it. */
export function appendChecksum(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + CRC_LEN);
  out.set(body);
  out.set(CRC_HEAD, body.length);
  new DataView(out.buffer, out.byteOffset + body.length + CRC_HEAD.length, 4).setUint32(0, crc32(body), true);
  return out;
}

function headAt(bytes: Uint8Array, at: number, head: readonly number[]): boolean {
  return at >= 0 && head.every((b, i) => bytes[at + i] === b);
}

function crcHolds(bytes: Uint8Array, at: number): boolean {
  const v = bytes.subarray(at + CRC_HEAD.length);
  return crc32(bytes.subarray(0, at)) === (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24)) >>> 0;
}

/**
 * Where the checksum field starts, or -1 when the file has none. It is found
 * from the end (it is written last, with a fixed size), not by parsing, so a
 * damaged length earlier in the file cannot hide it. A CRC field is looked
 * for first; when the last bytes only look like one by chance (an older
 * file's digest), the SHA-256 field is tried. Throws on a mismatch.
 */
export function verifyChecksum(bytes: Uint8Array, source: string): number {
  const crcAt = bytes.length - CRC_LEN;
  const shaAt = bytes.length - SHA_LEN;
  const crc = headAt(bytes, crcAt, CRC_HEAD);
  if (crc && crcHolds(bytes, crcAt)) return crcAt;
  if (headAt(bytes, shaAt, SHA_HEAD)) {
    if (sha256(bytes.subarray(0, shaAt)).equals(bytes.subarray(shaAt + SHA_HEAD.length))) return shaAt;
  } else if (!crc) {
    return -1;
  }
  throw corrupt(source, 'checksum mismatch (the file is damaged or was changed after it was written)');
}
