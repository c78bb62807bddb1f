/**
 * meta.pb's compiled matchers (Meta fields 103 and 104, with the byte classes
 * of field 105): the matcher's trie arrays as raw little-endian bytes, so a
 * load maps them instead of rebuilding the trie from the radix tree. Written
 * and read on little-endian machines only; elsewhere the radix trees are used.
 *
 * Encoded here rather than by protobufjs, so that each array's bytes start at
 * a file offset that is a multiple of 8 (CompiledMatcher.padding before it
 * where needed): a reader then uses them in place, as typed-array views of
 * the file's buffer (Wire.view), instead of copying 7 MB at every start.
 */
import { type ClassTable, DASH } from '../../glob.js';
import { type CompiledTrie, Matcher } from '../../match/index.js';
import { type CompiledAliases } from '../module-index.js';
import { CompiledField, WIRE_LEN, WIRE_VARINT } from './fields.js';
import { corrupt, type Wire } from './wire.js';

export interface CompiledMatcherMsg {
  format: number;
  nodes: number;
  edgeStart: Uint8Array;
  edgeToken: Uint8Array;
  edgeTarget: Uint8Array;
  isStar: Uint8Array;
  valueStart: Uint8Array;
  values: Uint8Array;
  patterns: number;
  /** uint8[256]: each byte's class (Matcher.byteClasses), for Matcher.fromOwn. */
  byteClass: Uint8Array;
}

export function bytesOf(a: Uint32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function compiledMsg(c: CompiledAliases): CompiledMatcherMsg {
  const t = c.matcher.compiled();
  return {
    format: 1,
    nodes: t.isStar.length,
    edgeStart: bytesOf(t.edgeStart),
    edgeToken: bytesOf(t.edgeToken),
    edgeTarget: bytesOf(t.edgeTarget),
    isStar: bytesOf(t.isStar),
    valueStart: bytesOf(t.valueStart),
    values: bytesOf(t.values),
    patterns: c.count,
    byteClass: c.matcher.byteClasses().byteClass,
  };
}

/** The array fields in the order they are written. */
const ARRAY_FIELDS = [
  [CompiledField.edgeStart, 'edgeStart'],
  [CompiledField.edgeToken, 'edgeToken'],
  [CompiledField.edgeTarget, 'edgeTarget'],
  [CompiledField.isStar, 'isStar'],
  [CompiledField.valueStart, 'valueStart'],
  [CompiledField.values, 'values'],
] as const;

/** Arrays start at file offsets that are multiples of this (Uint32Array needs 4; 8 leaves room for wider types). */
export const ARRAY_ALIGN = 8;

function varintLen(v: number): number {
  let n = 1;
  for (; v >= 0x80; n++) v = Math.floor(v / 128);
  return n;
}

/** Write `v` as a varint of exactly `width` bytes (wider than needed only to keep a layout: protobuf readers accept that). */
function putVarint(out: Uint8Array, at: number, v: number, width = varintLen(v)): number {
  for (let i = 1; i < width; i++) {
    out[at++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  out[at++] = v;
  return at;
}

/** Bytes of padding before each array field of a message whose content starts at file offset `base`, and the content's size. */
function layout(m: CompiledMatcherMsg, base: number): { pads: number[]; size: number } {
  let o = base + 1 + varintLen(m.format) + 1 + varintLen(m.nodes);
  const pads: number[] = [];
  for (const [, name] of ARRAY_FIELDS) {
    const head = 1 + varintLen(m[name].length);
    let pad = (ARRAY_ALIGN - ((o + head) % ARRAY_ALIGN)) % ARRAY_ALIGN;
    if (pad === 1) pad += ARRAY_ALIGN; // a padding field is at least 2 bytes (tag, length 0)
    pads.push(pad);
    o += pad + head + m[name].length;
  }
  return { pads, size: o + 1 + varintLen(m.patterns) + 1 + varintLen(m.byteClass.length) + m.byteClass.length - base };
}

/**
 * The Meta field `field` holding `m`, for a file in which it starts at byte
 * `start`: each array's bytes at a multiple of ARRAY_ALIGN from the file's
 * start.
 */
export function encodeCompiledField(field: number, m: CompiledMatcherMsg, start: number): Uint8Array {
  const tag = (field << 3) | WIRE_LEN;
  const tagLen = varintLen(tag);
  // The content's offset depends on its length's varint and the padding on
  // the offset: settle the two (they change together only within 8 bytes
  // of a varint boundary; then the wider length is kept, written long).
  let width = 1;
  let l = layout(m, start + tagLen + width);
  for (let i = 0; i < 3 && varintLen(l.size) !== width; i++) {
    width = varintLen(l.size);
    l = layout(m, start + tagLen + width);
  }
  if (varintLen(l.size) > width) {
    width = varintLen(l.size);
    l = layout(m, start + tagLen + width);
  }
  const out = new Uint8Array(tagLen + width + l.size);
  let at = putVarint(out, 0, tag);
  at = putVarint(out, at, l.size, width);
  out[at++] = (CompiledField.format << 3) | WIRE_VARINT;
  at = putVarint(out, at, m.format);
  out[at++] = (CompiledField.nodes << 3) | WIRE_VARINT;
  at = putVarint(out, at, m.nodes);
  ARRAY_FIELDS.forEach(([f, name], i) => {
    const pad = l.pads[i]!;
    if (pad > 0) {
      out[at++] = (CompiledField.padding << 3) | WIRE_LEN;
      out[at++] = pad - 2;
      at += pad - 2; // zeros
    }
    const a = m[name];
    out[at++] = (f << 3) | WIRE_LEN;
    at = putVarint(out, at, a.length);
    out.set(a, at);
    at += a.length;
  });
  out[at++] = (CompiledField.patterns << 3) | WIRE_VARINT;
  at = putVarint(out, at, m.patterns);
  out[at++] = (CompiledField.byteClass << 3) | WIRE_LEN;
  at = putVarint(out, at, m.byteClass.length);
  out.set(m.byteClass, at);
  return out;
}

/** A CompiledMatcher message as read: its counts and its arrays by field number. */
export interface CompiledMatcherRead {
  nodes: number;
  patterns: number;
  format: number;
  arrays: Map<number, Uint8Array>;
  byteClass: Uint8Array | undefined;
}

/** Read a CompiledMatcher message ending at `end`. */
export function readCompiled(r: Wire, end: number): CompiledMatcherRead {
  const c: CompiledMatcherRead = { nodes: 0, patterns: 0, format: 0, arrays: new Map(), byteClass: undefined };
  while (r.pos < end) {
    r.next();
    const f = r.field;
    if (f === CompiledField.format) c.format = r.varintField('CompiledMatcher.format');
    else if (f === CompiledField.nodes) c.nodes = r.varintField('CompiledMatcher.nodes');
    else if (f === CompiledField.patterns) c.patterns = r.varintField('CompiledMatcher.patterns');
    else if (f >= CompiledField.edgeStart && f <= CompiledField.values) {
      r.expect(WIRE_LEN, `CompiledMatcher field ${f}`);
      c.arrays.set(f, r.view(4));
    } else if (f === CompiledField.byteClass) {
      r.expect(WIRE_LEN, 'CompiledMatcher.byte_class');
      c.byteClass = r.view(1);
    } else r.skipField();
  }
  return c;
}

/** The byte classes (Meta field 105), interned into `classes` in file order; each must be new. */
export function internByteClasses(classBytes: readonly Uint8Array[], classes: ClassTable, source: string): void {
  for (const b of classBytes) {
    if (b.length !== 32) throw corrupt(source, 'a byte class is not 32 bytes');
    const set = new Uint32Array(8);
    new Uint8Array(set.buffer).set(b);
    if (classes.intern(set) !== classes.sets.length - 1) throw corrupt(source, 'duplicate byte classes');
  }
}

/**
 * A compiled matcher as read back into a Matcher; throws E_INDEX_CORRUPT on
 * anything inconsistent. `own`: arrays from this hotplugd's own index cache,
 * proved intact (see decodeMeta), checked by Matcher.fromOwn only.
 */
export function matcherFromCompiled(c: CompiledMatcherRead, classes: ClassTable, nModules: number, maxStates: number, source: string, own = false): CompiledAliases {
  if (c.format !== 1) throw corrupt(source, `compiled matcher format ${c.format} is unknown`);
  const u32 = (f: number): Uint32Array => {
    const b = c.arrays.get(f) ?? new Uint8Array(0);
    if (b.length % 4 !== 0) throw corrupt(source, `compiled matcher field ${f} is not a uint32 array`);
    return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
  };
  const t: CompiledTrie = {
    edgeStart: u32(CompiledField.edgeStart),
    edgeToken: u32(CompiledField.edgeToken),
    edgeTarget: u32(CompiledField.edgeTarget),
    isStar: c.arrays.get(CompiledField.isStar) ?? new Uint8Array(0),
    valueStart: u32(CompiledField.valueStart),
    values: u32(CompiledField.values),
  };
  if (t.isStar.length !== c.nodes) throw corrupt(source, 'compiled matcher: node count disagrees');
  // Only hotplugd writes compiled matchers, from normalized patterns: a
  // `-` edge means another writer, whose patterns would not match.
  if (t.edgeToken.includes(DASH)) throw corrupt(source, 'compiled matcher: a "-" edge (patterns are not normalized)');
  const m = own ? Matcher.fromOwn(t, classes, nModules, maxStates, c.byteClass) : Matcher.fromCompiled(t, classes, nModules, maxStates);
  if (typeof m === 'string') throw corrupt(source, `compiled matcher: ${m}`);
  return { matcher: m, count: c.patterns };
}
