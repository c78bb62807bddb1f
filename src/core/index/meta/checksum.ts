/**
 * meta.pb's integrity field: hotplugd's writer ends the file with
 * Meta.checksum (field 106), the SHA-256 of every byte before it; the reader
 * verifies it before parsing and refuses a mismatch. Files without it
 * (Monogon's own) are still read.
 */
import { createHash } from 'node:crypto';
import { corrupt } from './wire.js';

/** Meta.checksum (field 106, bytes): its tag as a varint, then the length 32. */
const CHECKSUM_HEAD = [0xd2, 0x06, 0x20];
export const CHECKSUM_LEN = CHECKSUM_HEAD.length + 32;

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Append the checksum field: the SHA-256 of every byte before it. */
export function appendChecksum(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + CHECKSUM_LEN);
  out.set(body);
  out.set(CHECKSUM_HEAD, body.length);
  out.set(sha256(body), body.length + CHECKSUM_HEAD.length);
  return out;
}

/**
 * Where the checksum field starts, or -1 when the file has none. It is found
 * from the end (it is written last, with a fixed size), not by parsing, so a
 * damaged length earlier in the file cannot hide it. Throws on a mismatch.
 */
export function verifyChecksum(bytes: Uint8Array, source: string): number {
  const at = bytes.length - CHECKSUM_LEN;
  if (at < 0 || CHECKSUM_HEAD.some((b, i) => bytes[at + i] !== b)) return -1;
  const want = bytes.subarray(at + CHECKSUM_HEAD.length);
  if (!sha256(bytes.subarray(0, at)).equals(want)) {
    throw corrupt(source, 'checksum mismatch (the file is damaged or was changed after it was written)');
  }
  return at;
}
