/**
 * The protobuf wire reader meta.pb is decoded with, and its one field reader
 * (`next`: the tag of the next field, as `field` and `wireType`). Every read
 * is checked against the buffer: a damaged file gives E_INDEX_CORRUPT, never
 * an out-of-range read.
 *
 * Why not protobufjs: decoding is the start-up path, and a real kernel's
 * radix tree has ~400,000 nodes: protobufjs's generated-message decode took
 * ~500 ms and its Reader ~170 ms here, this ~30 ms (npm run bench).
 * protobufjs still owns the schema and the encoder (write.ts).
 */
import { HotplugError } from '../../../errors.js';
import { WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT } from './fields.js';

export function corrupt(source: string, problem: string, cause?: unknown): HotplugError {
  return new HotplugError('E_INDEX_CORRUPT', problem, { file: source, cause });
}

export class Wire {
  pos = 0;
  /** The field number and wire type of the tag `next` read last. */
  field = 0;
  wireType = 0;
  /** The same bytes as a Buffer, for its native string decoding. */
  private readonly text: Buffer;
  constructor(
    readonly buf: Uint8Array,
    readonly source: string,
  ) {
    this.text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get len(): number {
    return this.buf.length;
  }

  private truncated(): HotplugError {
    return corrupt(this.source, 'truncated meta.pb');
  }

  /** Read the next field's tag into `field` and `wireType`. */
  next(): void {
    const tag = this.uint32();
    this.field = tag >>> 3;
    this.wireType = tag & 7;
  }

  /** Refuse the current field unless its wire type is `want`. */
  expect(want: number, what: string): void {
    if (this.wireType !== want) throw corrupt(this.source, `bad wire type ${this.wireType} for ${what}`);
  }

  /** A varint, as protobuf's uint32 reads it (low 32 bits). */
  uint32(): number {
    const { buf } = this;
    let x = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.pos >= buf.length) throw this.truncated();
      const b = buf[this.pos++]!;
      if (shift < 32) x |= (b & 0x7f) << shift;
      if (b < 0x80) return x >>> 0;
    }
    throw corrupt(this.source, 'varint longer than 10 bytes');
  }

  /** Length of a length-delimited field, checked against the buffer. */
  length(): number {
    const n = this.uint32();
    if (this.pos + n > this.buf.length) throw this.truncated();
    return n;
  }

  string(): string {
    const n = this.length();
    // UTF-8, the default: naming no encoding skips Buffer's lookup of one (measurable over a module list's ~8,500 strings).
    const s = this.text.toString(undefined, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** The current field as a uint32 varint. */
  varintField(what: string): number {
    this.expect(WIRE_VARINT, what);
    return this.uint32();
  }

  /** The current field as a string. */
  stringField(what: string): string {
    this.expect(WIRE_LEN, what);
    return this.string();
  }

  /** The current field, packed or not, as repeated uint32 values appended to `out`. */
  uint32sField(out: number[]): void {
    if (this.wireType === WIRE_LEN) {
      const end = this.length() + this.pos;
      while (this.pos < end) out.push(this.uint32());
    } else if (this.wireType === WIRE_VARINT) {
      out.push(this.uint32());
    } else {
      throw corrupt(this.source, `bad wire type ${this.wireType} for a repeated uint32`);
    }
  }

  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw this.truncated();
    this.pos += n;
  }

  /**
   * A length-delimited field in place, when its bytes start at a multiple of
   * `align` in their ArrayBuffer (as typed-array views of them need), else
   * copied into fresh memory. The caller must not write to it: it is a view
   * of the file's buffer.
   */
  view(align: number): Uint8Array {
    const n = this.length();
    const start = this.pos;
    this.pos += n;
    if ((this.buf.byteOffset + start) % align === 0) return this.buf.subarray(start, start + n);
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(start, start + n));
    return out;
  }

  /** A length-delimited field copied into fresh (aligned) memory. */
  bytes(): Uint8Array {
    const n = this.length();
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** Skip the current field (one this reader does not know). */
  skipField(): void {
    const wt = this.wireType;
    if (wt === WIRE_VARINT) this.uint32();
    else if (wt === WIRE_I64) this.skip(8);
    else if (wt === WIRE_LEN) this.skip(this.length());
    else if (wt === WIRE_I32) this.skip(4);
    else throw corrupt(this.source, `unsupported wire type ${wt}`);
  }
}
