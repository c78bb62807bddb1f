/**
 * meta.pb's compiled matchers (Meta fields 103 and 104, with the byte classes
 * of field 105): the matcher's trie arrays as raw little-endian bytes, so a
 * load maps them instead of rebuilding the trie from the radix tree. Written
 * and read on little-endian machines only; elsewhere the radix trees are used.
 */
import { type ClassTable, DASH } from '../../glob.js';
import { type CompiledTrie, Matcher } from '../../match/index.js';
import { type CompiledAliases } from '../module-index.js';
import { CompiledField, WIRE_LEN } from './fields.js';
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
  };
}

/** A CompiledMatcher message as read: its counts and its arrays by field number. */
export interface CompiledMatcherRead {
  nodes: number;
  patterns: number;
  format: number;
  arrays: Map<number, Uint8Array>;
}

/** Read a CompiledMatcher message ending at `end`. */
export function readCompiled(r: Wire, end: number): CompiledMatcherRead {
  const c: CompiledMatcherRead = { nodes: 0, patterns: 0, format: 0, arrays: new Map() };
  while (r.pos < end) {
    r.next();
    const f = r.field;
    if (f === CompiledField.format) c.format = r.varintField('CompiledMatcher.format');
    else if (f === CompiledField.nodes) c.nodes = r.varintField('CompiledMatcher.nodes');
    else if (f === CompiledField.patterns) c.patterns = r.varintField('CompiledMatcher.patterns');
    else if (f >= CompiledField.edgeStart && f <= CompiledField.values) {
      r.expect(WIRE_LEN, `CompiledMatcher field ${f}`);
      c.arrays.set(f, r.bytes());
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

/** A compiled matcher as read back into a Matcher; throws E_INDEX_CORRUPT on anything inconsistent. */
export function matcherFromCompiled(c: CompiledMatcherRead, classes: ClassTable, nModules: number, maxStates: number, source: string): CompiledAliases {
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
  const m = Matcher.fromCompiled(t, classes, nModules, maxStates);
  if (typeof m === 'string') throw corrupt(source, `compiled matcher: ${m}`);
  return { matcher: m, count: c.patterns };
}
