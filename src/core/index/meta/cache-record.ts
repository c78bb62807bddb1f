/**
 * The index cache's record (Meta.cache, field 108; schema: proto/meta.proto):
 * which depmod files, in which state, an index cache was built from. The
 * cache file is a meta.pb (compiled matchers included) with this record as
 * its last field before the checksum, so that the record alone can be
 * replaced (replaceCacheRecord) without encoding the index again. Encoded and
 * decoded here by hand: a cache hit never loads protobufjs.
 */
import { appendChecksum, verifyChecksum } from './checksum.js';
import { CacheRecordField, CacheSourceField, MetaField, WIRE_LEN, WIRE_VARINT } from './fields.js';
import { corrupt, Wire } from './wire.js';

/**
 * hotplugd's cache format; a record with another number is not used (3: only
 * modules.builtin names are built-in modules, 2 also took the parameter-only
 * names of modules.builtin.modinfo; 2: the CRC-32 trailer and aligned compiled
 * arrays; 1 had SHA-256 and copied arrays).
 */
export const CACHE_FORMAT = 3;

export interface CacheSource {
  path: string;
  /** false: the file did not exist when the index was built (it must still not). */
  present: boolean;
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
  /** SHA-256 of the bytes that were read (empty when absent). */
  sha256: Uint8Array;
}

export interface CacheRecord {
  format: number;
  kernelRelease: string;
  modulesDir: string;
  /** Wall clock (ns) just before the sources were stat'ed: a source modified at or after it is "racy". */
  statTimeNs: bigint;
  sources: CacheSource[];
}

class Out {
  private readonly parts: number[] = [];
  varint(v: bigint): this {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
    return this;
  }
  tag(field: number, wireType: number): this {
    return this.varint(BigInt((field << 3) | wireType));
  }
  uint(field: number, v: bigint | number): this {
    return this.tag(field, WIRE_VARINT).varint(BigInt(v));
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE_LEN).varint(BigInt(b.length));
    for (const x of b) this.parts.push(x);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** The record as a Meta field (tag, length, message), to append to a meta.pb body. */
export function encodeCacheRecord(rec: CacheRecord): Uint8Array {
  const msg = new Out().uint(CacheRecordField.format, rec.format).string(CacheRecordField.kernelRelease, rec.kernelRelease);
  msg.string(CacheRecordField.modulesDir, rec.modulesDir).uint(CacheRecordField.statTimeNs, rec.statTimeNs);
  for (const s of rec.sources) {
    const src = new Out().string(CacheSourceField.path, s.path).uint(CacheSourceField.present, s.present ? 1 : 0);
    src.uint(CacheSourceField.size, s.size).uint(CacheSourceField.mtimeNs, s.mtimeNs).uint(CacheSourceField.ino, s.ino);
    src.bytes(CacheSourceField.sha256, s.sha256);
    msg.bytes(CacheRecordField.sources, src.finish());
  }
  return new Out().bytes(MetaField.cache, msg.finish()).finish();
}

/** A 64-bit varint at the reader's position. */
function uint64(r: Wire): bigint {
  let x = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (r.pos >= r.len) throw corrupt(r.source, 'truncated cache record');
    const b = r.buf[r.pos++]!;
    x |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return BigInt.asUintN(64, x);
  }
  throw corrupt(r.source, 'varint longer than 10 bytes');
}

function varint64(r: Wire, what: string): bigint {
  r.expect(WIRE_VARINT, what);
  return uint64(r);
}

function readSource(r: Wire, end: number): CacheSource {
  const s: CacheSource = { path: '', present: false, size: 0n, mtimeNs: 0n, ino: 0n, sha256: new Uint8Array(0) };
  while (r.pos < end) {
    r.next();
    const f = r.field;
    if (f === CacheSourceField.path) s.path = r.stringField('CacheSource.path');
    else if (f === CacheSourceField.present) s.present = varint64(r, 'CacheSource.present') !== 0n;
    else if (f === CacheSourceField.size) s.size = varint64(r, 'CacheSource.size');
    else if (f === CacheSourceField.mtimeNs) s.mtimeNs = BigInt.asIntN(64, varint64(r, 'CacheSource.mtime_ns'));
    else if (f === CacheSourceField.ino) s.ino = varint64(r, 'CacheSource.ino');
    else if (f === CacheSourceField.sha256) {
      r.expect(WIRE_LEN, 'CacheSource.sha256');
      s.sha256 = r.bytes();
    } else r.skipField();
  }
  return s;
}

function readRecord(r: Wire, end: number): CacheRecord {
  const rec: CacheRecord = { format: 0, kernelRelease: '', modulesDir: '', statTimeNs: 0n, sources: [] };
  while (r.pos < end) {
    r.next();
    const f = r.field;
    if (f === CacheRecordField.format) rec.format = r.varintField('CacheRecord.format');
    else if (f === CacheRecordField.kernelRelease) rec.kernelRelease = r.stringField('CacheRecord.kernel_release');
    else if (f === CacheRecordField.modulesDir) rec.modulesDir = r.stringField('CacheRecord.modules_dir');
    else if (f === CacheRecordField.statTimeNs) rec.statTimeNs = BigInt.asIntN(64, varint64(r, 'CacheRecord.stat_time_ns'));
    else if (f === CacheRecordField.sources) {
      r.expect(WIRE_LEN, 'CacheRecord.sources');
      const len = r.length();
      rec.sources.push(readSource(r, r.pos + len));
    } else r.skipField();
  }
  if (r.pos !== end) throw corrupt(r.source, 'cache record overruns its length');
  return rec;
}

/**
 * The cache record of a meta.pb and where its field starts. The file's
 * checksum is verified first (a cache without one is refused: hotplugd
 * always writes it), and the record must be the last field before it.
 * Throws E_INDEX_CORRUPT for anything else, including a file with no record.
 */
export function readCacheRecord(bytes: Uint8Array, source: string): { record: CacheRecord; at: number; checksumAt: number } {
  const checksumAt = verifyChecksum(bytes, source);
  if (checksumAt < 0) throw corrupt(source, 'no checksum (not an index cache written by hotplugd)');
  const r = new Wire(bytes.subarray(0, checksumAt), source);
  let found: { record: CacheRecord; at: number } | undefined;
  while (r.pos < r.len) {
    const at = r.pos;
    r.next();
    if (r.field !== MetaField.cache) {
      r.skipField();
      continue;
    }
    r.expect(WIRE_LEN, 'Meta.cache');
    const len = r.length();
    found = { record: readRecord(r, r.pos + len), at };
    if (r.pos !== r.len) throw corrupt(source, 'the cache record is not the last field');
  }
  if (found === undefined) throw corrupt(source, 'no cache record (a meta.pb, not an index cache)');
  return { ...found, checksumAt };
}

/** The same file with `rec` in place of the record at `at` (readCacheRecord), checksummed again. */
export function replaceCacheRecord(bytes: Uint8Array, at: number, rec: CacheRecord): Uint8Array {
  const enc = encodeCacheRecord(rec);
  const body = new Uint8Array(at + enc.length);
  body.set(bytes.subarray(0, at));
  body.set(enc, at);
  return appendChecksum(body);
}
