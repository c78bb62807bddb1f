/**
 * meta.pb integrity: the checksum hotplugd's writer appends (field 109, a
 * CRC-32; field 106, a SHA-256, in files older hotplugd wrote) turns
 * every damaged file into an E_INDEX_CORRUPT refusal instead of an index that
 * silently answers differently.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ModuleIndex } from '../../../../../src/core/index/module-index.js';
import { crc32, crc32Js, CRC_LEN, SHA_LEN } from '../../../../../src/core/index/meta/checksum.js';
import { decodeMeta } from '../../../../../src/core/index/meta/read.js';
import { encodeMeta } from '../../../../../src/core/index/meta/write.js';
import { HotplugError } from '../../../../../src/errors.js';
import { depmodParts } from '../../../../../src/sys/indexfs.js';
import { smallDepmodDir } from '../../../../support/small-index.js';

/** Everything an index answers that a flipped bit could change. */
function fingerprint(index: ModuleIndex, queries: readonly string[]): string {
  return JSON.stringify({
    modules: index.modules.map((m) => [m.name, m.path, m.builtin, m.deps]),
    answers: queries.map((q) => index.lookup(q).names),
    softdeps: index.modules.map((m) => index.softdeps(m.name)),
  });
}

/** Flip every `step`th bit of `bytes` once; count the refusals and the silent changes. */
function flipAll(bytes: Uint8Array, queries: readonly string[], step = 1): { refused: number; same: number; silent: string[]; crashes: string[] } {
  const want = fingerprint(new ModuleIndex(decodeMeta(bytes, 'meta.pb')), queries);
  const out = { refused: 0, same: 0, silent: [] as string[], crashes: [] as string[] };
  const copy = new Uint8Array(bytes);
  for (let bit = 0; bit < bytes.length * 8; bit += step) {
    const at = bit >> 3;
    copy[at]! ^= 1 << (bit & 7);
    try {
      const got = fingerprint(new ModuleIndex(decodeMeta(copy, 'meta.pb')), queries);
      if (got === want) out.same++;
      else out.silent.push(`bit ${bit} (byte ${at} of ${bytes.length})`);
    } catch (e) {
      if (e instanceof HotplugError) out.refused++;
      else out.crashes.push(`bit ${bit}: ${String(e)}`);
    }
    copy[at]! ^= 1 << (bit & 7);
  }
  return out;
}

describe('meta.pb checksum', () => {
  const { dir, queries } = smallDepmodDir(['ahci', 'virtio_net', 'uas'], 6);

  it('refuses every single-bit flip of a built meta.pb that would change an answer (none is silent)', async () => {
    const bytes = await encodeMeta(depmodParts(dir));
    expect(bytes.length).toBeLessThan(20_000);
    const index = new ModuleIndex(decodeMeta(bytes, 'meta.pb'));
    expect(queries.filter((q) => index.lookup(q).names.includes('ahci')).length).toBeGreaterThan(0);
    const r = flipAll(bytes, queries);
    expect(r.crashes).toEqual([]);
    expect(r.silent).toEqual([]);
    // The only flips read at all are in the checksum field's own tag, which
    // leave the content (and so every answer) as it was.
    expect(r.same).toBeLessThanOrEqual(16);
    expect(r.refused).toBe(bytes.length * 8 - r.same);
  });

  // Also bounds the decoder on damaged files without a checksum (Monogon's):
  // one flip here made a compiled-matcher offset walk 2^32 elements.
  it('shows what the checksum guards against: without it, some flips change answers silently', async () => {
    const bytes = await encodeMeta(depmodParts(dir));
    const unchecked = bytes.subarray(0, bytes.length - CRC_LEN);
    expect(fingerprint(new ModuleIndex(decodeMeta(unchecked, 'meta.pb')), queries)).toBe(
      fingerprint(new ModuleIndex(decodeMeta(bytes, 'meta.pb')), queries),
    );
    const r = flipAll(unchecked, queries, 5);
    expect(r.crashes).toEqual([]);
    expect(r.silent.length).toBeGreaterThan(0);
  });

  it('names the file and the problem when the checksum does not match', async () => {
    const bytes = new Uint8Array(await encodeMeta(depmodParts(dir)));
    bytes[10]! ^= 0x01;
    expect(() => decodeMeta(bytes, '/x/meta.pb')).toThrow(/^\/x\/meta\.pb: checksum mismatch/);
  });

  it('refuses a checksum field anywhere but at the end', async () => {
    const bytes = await encodeMeta(depmodParts(dir));
    const trailer = bytes.subarray(bytes.length - CRC_LEN);
    const moved = new Uint8Array(bytes.length);
    moved.set(trailer, 0);
    moved.set(bytes.subarray(0, bytes.length - CRC_LEN), CRC_LEN);
    expect(() => decodeMeta(moved, 'x.pb')).toThrow(/checksum field/);
  });

  it('reads a meta.pb that ends with the SHA-256 field older hotplugd wrote, and refuses it damaged', async () => {
    const bytes = await encodeMeta(depmodParts(dir));
    const body = bytes.subarray(0, bytes.length - CRC_LEN);
    const old = new Uint8Array(body.length + SHA_LEN);
    old.set(body);
    old.set([0xd2, 0x06, 0x20], body.length);
    old.set(createHash('sha256').update(body).digest(), body.length + 3);
    const queries1 = queries.slice(0, 200);
    expect(fingerprint(new ModuleIndex(decodeMeta(old, 'old.pb')), queries1)).toBe(fingerprint(new ModuleIndex(decodeMeta(bytes, 'new.pb')), queries1));
    const damaged = new Uint8Array(old);
    damaged[body.length - 1]! ^= 0x10;
    expect(() => decodeMeta(damaged, 'old.pb')).toThrow(/checksum mismatch/);
  });

  it('uses the SHA-256 field when the bytes before it only look like a CRC-32 field by chance', async () => {
    const bytes = await encodeMeta(depmodParts(dir));
    const body = bytes.subarray(0, bytes.length - CRC_LEN);
    // A body (an unknown field 120 appended) whose SHA-256 digest ends with ed 06 .. .. .. ..: ~65,536 tries.
    const head = createHash('sha256').update(body);
    let file: Uint8Array | undefined;
    for (let i = 0; i < 1 << 21 && file === undefined; i++) {
      const extra = Uint8Array.from([0xc0, 0x07, (i & 0x7f) | 0x80, ((i >> 7) & 0x7f) | 0x80, i >> 14]);
      const digest = head.copy().update(extra).digest();
      if (digest[26] === 0xed && digest[27] === 0x06) {
        file = new Uint8Array(body.length + extra.length + SHA_LEN);
        file.set(body);
        file.set(extra, body.length);
        file.set([0xd2, 0x06, 0x20], body.length + extra.length);
        file.set(digest, body.length + extra.length + 3);
      }
    }
    expect(file).toBeDefined();
    expect(decodeMeta(file!, 'x.pb').modules.length).toBe(decodeMeta(bytes, 'y.pb').modules.length);
  });

  it('computes zlib\'s CRC-32, also where the runtime has no zlib.crc32', () => {
    const data = randomBytes(100_003);
    const want = (zlib as { crc32?: (b: Uint8Array) => number }).crc32?.(data);
    if (want !== undefined) expect(crc32(data)).toBe(want);
    expect(crc32Js(data)).toBe(crc32(data));
    expect(crc32Js(new TextEncoder().encode('123456789'))).toBe(0xcbf43926); // the CRC-32 check value
  });
});
