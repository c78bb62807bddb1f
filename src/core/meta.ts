/**
 * Monogon-compatible `meta.pb` (schema: proto/meta.proto), through protobufjs.
 *
 * Decoding turns the radix tree back into token sequences (glob.ts tokens), so
 * a decoded index answers exactly like the one it was written from. Encoding
 * writes only node types Monogon knows: a bracket set becomes one BYTE_RANGE
 * branch per contiguous range (the pattern is expanded), and bytes outside
 * printable ASCII are written as one-byte BYTE_RANGEs, since `literal` is a
 * protobuf string (UTF-8) in Monogon's schema.
 *
 * Integrity: hotplugd's writer ends the file with field 106, the SHA-256 of
 * every byte before it; the reader verifies it before parsing and refuses a
 * mismatch. Files without it (Monogon's own) are still read.
 *
 * Normalization: depmod stores alias patterns with `-` turned into `_`
 * outside brackets (libkmod's alias_normalize), and lookups normalize the
 * query the same way. Monogon's tooling stores patterns as modules declare
 * them, so LITERAL bytes are normalized when read (BYTE_RANGE nodes are
 * bracket sets and stay as they are); the writer never puts a `-` in a
 * LITERAL, so a file it wrote reads back unchanged.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { HotplugError } from '../errors.js';
import { checkModulePath, checkNoCycles } from './build-index.js';
import { type SoftdepSpec } from './depmod.js';
import { ClassTable, MAX_ALIAS_BYTES, newByteSet, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from './glob.js';
import { type CompiledAliases, type IndexParts, type ModuleRecord } from './index.js';
import { type CompiledTrie, Matcher, type PatternEntry, TrieBuilder } from './match/index.js';
import { META_SCHEMA } from './meta-schema.js';

const NodeType = { LITERAL: 0, WILDCARD: 1, SINGLE_WILDCARD: 2, BYTE_RANGE: 3, ROOT: 4 } as const;

interface RadixNodeMsg {
  type?: number;
  literal?: string;
  startByte?: number;
  endByte?: number;
  children?: RadixNodeMsg[];
  moduleIndex?: number[];
}

interface CompiledMatcherMsg {
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

interface MetaMsg {
  modules: { name: string; path: string; depends: number[] }[];
  moduleDeviceMatches: RadixNodeMsg;
  builtinDeviceMatches: RadixNodeMsg;
  softdeps: { module: string; pre: string[]; post: string[] }[];
  kernelRelease: string;
  compiledDeviceMatches?: CompiledMatcherMsg;
  compiledBuiltinDeviceMatches?: CompiledMatcherMsg;
  byteClasses?: Uint8Array[];
}

/** protobufjs, loaded only to encode: decoding uses the small reader below (protobufjs costs 30 ms of start-up). */
async function MetaType(): Promise<import('protobufjs').Type> {
  const { default: protobuf } = await import('protobufjs');
  // protobufjs refuses messages nested deeper than 100 by default (protoc's
  // default); a radix tree is as deep as its longest pattern, at most
  // MAX_ALIAS_BYTES tokens (longer ones are skipped when the index is built),
  // below Go protobuf's default limit of 10,000 that Monogon's reader applies.
  protobuf.util.recursionLimit = Math.max(protobuf.util.recursionLimit, MAX_ALIAS_BYTES + 16);
  return protobuf.Root.fromJSON(META_SCHEMA).lookupType('hotplugd.meta.Meta');
}

const RANGE = 0x10000;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;

/** Meta.checksum (field 106, bytes): its tag as a varint, then the length 32. */
const CHECKSUM_FIELD = 106;
const CHECKSUM_HEAD = [0xd2, 0x06, 0x20];
const CHECKSUM_LEN = CHECKSUM_HEAD.length + 32;

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
function verifyChecksum(bytes: Uint8Array, source: string): number {
  const at = bytes.length - CHECKSUM_LEN;
  if (at < 0 || CHECKSUM_HEAD.some((b, i) => bytes[at + i] !== b)) return -1;
  const want = bytes.subarray(at + CHECKSUM_HEAD.length);
  if (!sha256(bytes.subarray(0, at)).equals(want)) {
    throw corrupt(source, 'checksum mismatch (the file is damaged or was changed after it was written)');
  }
  return at;
}

/** A byte set as maximal ranges [lo, hi]. */
function ranges(set: Uint32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let c = 1; c < 256; c++) {
    if (!setHas(set, c)) continue;
    let end = c;
    while (end + 1 < 256 && setHas(set, end + 1)) end++;
    out.push([c, end]);
    c = end;
  }
  return out;
}

const MAX_EXPANSION = 4096;

/** Expand class tokens into Monogon-expressible tokens (byte, STAR, ANY, RANGE|lo<<8|hi). */
function expand(tokens: string, classes: ClassTable): number[][] {
  let out: number[][] = [[]];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens.charCodeAt(i);
    let alts: number[];
    if (t >= TOKEN_CLASS) {
      alts = ranges(classes.sets[t - TOKEN_CLASS]!).map(([lo, hi]) => (lo === hi && lo >= 0x20 && lo < 0x7f && lo !== DASH ? lo : RANGE | (lo << 8) | hi));
    } else if (t < 256 && (t < 0x20 || t >= 0x7f || t === DASH)) {
      alts = [RANGE | (t << 8) | t];
    } else {
      alts = [t];
    }
    if (out.length * alts.length > MAX_EXPANSION) {
      throw new HotplugError('E_INDEX_CORRUPT', 'an alias expands to too many byte ranges for meta.pb');
    }
    out = out.flatMap((prefix) => alts.map((a) => [...prefix, a]));
  }
  return out;
}

interface BuildNode {
  children: Map<number, BuildNode>;
  modules: number[];
}

function buildRadix(entries: readonly PatternEntry[], classes: ClassTable): RadixNodeMsg {
  const root: BuildNode = { children: new Map(), modules: [] };
  for (const e of entries) {
    for (const path of expand(e.tokens, classes)) {
      let n = root;
      for (const t of path) {
        let c = n.children.get(t);
        if (!c) {
          c = { children: new Map(), modules: [] };
          n.children.set(t, c);
        }
        n = c;
      }
      if (!n.modules.includes(e.value)) n.modules.push(e.value);
    }
  }
  // Iterative (an explicit stack): a tree is as deep as its longest pattern.
  // Siblings are pushed in reverse token order, so each parent's children are
  // popped, and appended, in token order.
  const children: RadixNodeMsg[] = [];
  const stack: { token: number; node: BuildNode; into: RadixNodeMsg[] }[] = [];
  const pushChildren = (n: BuildNode, into: RadixNodeMsg[]): void => {
    const kids = [...n.children.entries()].sort((x, y) => x[0] - y[0]);
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ token: kids[i]![0], node: kids[i]![1], into });
  };
  pushChildren(root, children);
  while (stack.length > 0) {
    const top = stack.pop()!;
    const token = top.token;
    let n = top.node;
    let msg: RadixNodeMsg;
    if (token === TOKEN_STAR) msg = { type: NodeType.WILDCARD };
    else if (token === TOKEN_ANY) msg = { type: NodeType.SINGLE_WILDCARD };
    else if (token >= RANGE) msg = { type: NodeType.BYTE_RANGE, startByte: (token >> 8) & 0xff, endByte: token & 0xff };
    else {
      // Radix compression: absorb a chain of single-child literal nodes.
      let literal = String.fromCharCode(token);
      while (n.modules.length === 0 && n.children.size === 1) {
        const [t, child] = n.children.entries().next().value as [number, BuildNode];
        if (t >= 256) break;
        literal += String.fromCharCode(t);
        n = child;
      }
      msg = { type: NodeType.LITERAL, literal };
    }
    msg.children = [];
    msg.moduleIndex = n.modules;
    top.into.push(msg);
    pushChildren(n, msg.children);
  }
  return { type: NodeType.ROOT, children, moduleIndex: root.modules };
}

/** Encode index parts as meta.pb bytes. */
export async function encodeMeta(parts: IndexParts, kernelRelease = ''): Promise<Uint8Array> {
  const msg: MetaMsg = {
    modules: parts.modules.map((m) => ({ name: m.name, path: m.builtin ? '' : (m.path ?? ''), depends: m.deps })),
    moduleDeviceMatches: buildRadix(parts.aliases.matcher.entries(), parts.classes),
    builtinDeviceMatches: buildRadix(parts.builtinAliases.matcher.entries(), parts.classes),
    softdeps: [...parts.softdeps].map(([module, s]) => ({ module, pre: s.pre, post: s.post })),
    kernelRelease,
  };
  if (endianness() === 'LE') {
    msg.compiledDeviceMatches = compiledMsg(parts.aliases);
    msg.compiledBuiltinDeviceMatches = compiledMsg(parts.builtinAliases);
    msg.byteClasses = parts.classes.sets.map((set) => bytesOf(set));
  }
  const T = await MetaType();
  return appendChecksum(T.encode(T.fromObject(msg)).finish());
}

function bytesOf(a: Uint32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function compiledMsg(c: CompiledAliases): CompiledMatcherMsg {
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

function corrupt(source: string, problem: string, cause?: unknown): HotplugError {
  return new HotplugError('E_INDEX_CORRUPT', problem, { file: source, cause });
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/**
 * A minimal protobuf wire reader. Decoding is the start-up path, and a real
 * kernel's radix tree has ~400,000 nodes: protobufjs's generated-message
 * decode took ~500 ms and its Reader ~170 ms here, this ~30 ms (npm run
 * bench). protobufjs still owns the schema and the encoder.
 */
class Wire {
  pos = 0;
  /** The same bytes as a Buffer, for its native string decoding. */
  private readonly text: Buffer;
  constructor(
    readonly buf: Uint8Array,
    private readonly source: string,
  ) {
    this.text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get len(): number {
    return this.buf.length;
  }

  private truncated(): HotplugError {
    return corrupt(this.source, 'truncated meta.pb');
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
    const s = this.text.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  skip(n: number): void {
    if (this.pos + n > this.buf.length) throw this.truncated();
    this.pos += n;
  }

  /** A length-delimited field copied into fresh (aligned) memory. */
  bytes(): Uint8Array {
    const n = this.length();
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  skipType(wt: number): void {
    if (wt === 0) this.uint32();
    else if (wt === 1) this.skip(8);
    else if (wt === 2) this.skip(this.length());
    else if (wt === 5) this.skip(4);
    else throw corrupt(this.source, `unsupported wire type ${wt}`);
  }
}

/**
 * Decoding streams straight into the trie builder: no message objects for the
 * radix nodes.
 */
class MetaDecoder {
  private readonly classCache = new Map<number, number>();

  constructor(
    private readonly r: Wire,
    private readonly source: string,
    private readonly classes: ClassTable,
  ) {}

  /** Read a packed or unpacked repeated uint32 element into out. */
  private uint32s(wt: number, out: number[]): void {
    if (wt === WIRE_LEN) {
      const end = this.r.length() + this.r.pos;
      while (this.r.pos < end) out.push(this.r.uint32());
    } else if (wt === WIRE_VARINT) {
      out.push(this.r.uint32());
    } else {
      throw corrupt(this.source, `bad wire type ${wt} for a repeated uint32`);
    }
  }

  private expect(wt: number, want: number, what: string): void {
    if (wt !== want) throw corrupt(this.source, `bad wire type ${wt} for ${what}`);
  }

  private str(wt: number, what: string): string {
    this.expect(wt, WIRE_LEN, what);
    return this.r.string();
  }

  private varint(wt: number, what: string): number {
    this.expect(wt, WIRE_VARINT, what);
    return this.r.uint32();
  }

  module(end: number): { name: string; path: string; depends: number[] } {
    const r = this.r;
    const m = { name: '', path: '', depends: [] as number[] };
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 1) m.name = this.str(wt, 'Module.name');
      else if (f === 2) m.path = this.str(wt, 'Module.path');
      else if (f === 3) this.uint32s(wt, m.depends);
      else r.skipType(wt);
    }
    return m;
  }

  compiled(end: number): { nodes: number; patterns: number; format: number; arrays: Map<number, Uint8Array> } {
    const r = this.r;
    const c = { nodes: 0, patterns: 0, format: 0, arrays: new Map<number, Uint8Array>() };
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 1) c.format = this.varint(wt, 'CompiledMatcher.format');
      else if (f === 2) c.nodes = this.varint(wt, 'CompiledMatcher.nodes');
      else if (f === 9) c.patterns = this.varint(wt, 'CompiledMatcher.patterns');
      else if (f >= 3 && f <= 8) {
        this.expect(wt, WIRE_LEN, `CompiledMatcher field ${f}`);
        c.arrays.set(f, r.bytes());
      } else r.skipType(wt);
    }
    return c;
  }

  softdep(end: number): { module: string; pre: string[]; post: string[] } {
    const r = this.r;
    const s = { module: '', pre: [] as string[], post: [] as string[] };
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 1) s.module = this.str(wt, 'Softdep.module');
      else if (f === 2) s.pre.push(this.str(wt, 'Softdep.pre'));
      else if (f === 3) s.post.push(this.str(wt, 'Softdep.post'));
      else r.skipType(wt);
    }
    return s;
  }

  /**
   * A RadixNode (bytes from `start` to `end`) and everything below it, under
   * trie node `at`. Iterative: nodes waiting to be read are kept as
   * (start, end, parent trie node, depth) quadruples, since a tree is as
   * deep as its longest pattern. The order nodes are read in does not
   * matter: the trie builder keeps children sorted and values are sorted when
   * it finishes.
   */
  radix(start: number, end: number, b: TrieBuilder, at: number, depth: number, nModules: number): void {
    const pending = [start, end, at, depth];
    while (pending.length > 0) {
      const d = pending.pop()!;
      const parent = pending.pop()!;
      const e = pending.pop()!;
      const s = pending.pop()!;
      this.radixNode(s, e, b, parent, d, nModules, pending);
    }
  }

  /**
   * One RadixNode below trie node `at`; its children are appended to
   * `pending`. Two passes over its fields, so that the node's own token is
   * known before its children and module indices, whatever the field order
   * on the wire; no allocation per node.
   */
  private radixNode(start: number, end: number, b: TrieBuilder, at: number, depth: number, nModules: number, pending: number[]): void {
    if (depth > 4096) throw corrupt(this.source, 'radix tree is deeper than 4096 nodes');
    const r = this.r;
    let type = 0;
    let litStart = -1;
    let litLen = 0;
    let lo = 0;
    let hi = 0;
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 1) type = this.varint(wt, 'RadixNode.type');
      else if (f === 2) {
        this.expect(wt, WIRE_LEN, 'RadixNode.literal');
        litLen = r.length();
        litStart = r.pos;
        r.pos += litLen;
      } else if (f === 3) lo = this.varint(wt, 'RadixNode.start_byte');
      else if (f === 4) hi = this.varint(wt, 'RadixNode.end_byte');
      else r.skipType(wt);
    }
    if (r.pos !== end) throw corrupt(this.source, 'a radix node overruns its length');
    let node = at;
    switch (type) {
      case NodeType.ROOT:
        if (depth !== 0) throw corrupt(this.source, 'ROOT node below the root');
        break;
      case NodeType.LITERAL:
        if (litLen === 0) throw corrupt(this.source, 'empty LITERAL node');
        for (let i = litStart; i < litStart + litLen; i++) {
          const c = r.buf[i]!;
          node = b.child(node, c === DASH ? UNDERSCORE : c);
        }
        break;
      case NodeType.WILDCARD:
        node = b.child(node, TOKEN_STAR);
        break;
      case NodeType.SINGLE_WILDCARD:
        node = b.child(node, TOKEN_ANY);
        break;
      case NodeType.BYTE_RANGE: {
        if (lo > 255 || hi > 255 || lo > hi) throw corrupt(this.source, `BYTE_RANGE ${lo}-${hi} is not a byte range`);
        const key = (lo << 8) | hi;
        let id = this.classCache.get(key);
        if (id === undefined) {
          const set = newByteSet();
          for (let c = lo; c <= hi; c++) set[c >>> 5]! |= 1 << (c & 31);
          id = this.classes.intern(set);
          this.classCache.set(key, id);
        }
        node = b.child(node, TOKEN_CLASS + id);
        break;
      }
      default:
        throw corrupt(this.source, `unknown radix node type ${type}`);
    }
    r.pos = start;
    while (r.pos < end) {
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === 5) {
        this.expect(wt, WIRE_LEN, 'RadixNode.children');
        const len = r.length();
        const childStart = r.pos;
        pending.push(childStart, childStart + len, node, depth + 1);
        r.pos = childStart + len;
      } else if (f === 6) {
        const packedEnd = wt === WIRE_LEN ? r.length() + r.pos : -1;
        if (wt !== WIRE_LEN && wt !== WIRE_VARINT) throw corrupt(this.source, `bad wire type ${wt} for RadixNode.module_index`);
        do {
          const m = r.uint32();
          if (m >= nModules) {
            throw new HotplugError('E_INDEX_DEP_RANGE', `module_index ${m} is out of range (${nModules} modules)`, { file: this.source });
          }
          b.addValue(node, m);
        } while (r.pos < packedEnd);
      } else r.skipType(wt);
    }
  }
}

/** Decode meta.pb bytes into index parts; throws HotplugError on anything malformed. */
export function decodeMeta(bytes: Uint8Array, source: string): IndexParts & { kernelRelease: string } {
  const classes = new ClassTable();
  const r = new Wire(bytes, source);
  const d = new MetaDecoder(r, source, classes);
  const list: { name: string; path: string; depends: number[] }[] = [];
  const trees: { field: number; pos: number; len: number }[] = [];
  const softdeps = new Map<string, SoftdepSpec>();
  let kernelRelease = '';
  let modules: ModuleRecord[];
  let compiledAliases: CompiledAliases | undefined;
  let compiledBuiltin: CompiledAliases | undefined;
  const builders = new Map<number, { builder: TrieBuilder; count: number }>();
  const compiled = new Map<number, ReturnType<MetaDecoder['compiled']>>();
  const classBytes: Uint8Array[] = [];
  try {
    const checksumAt = verifyChecksum(bytes, source);
    while (r.pos < r.len) {
      const tagAt = r.pos;
      const tag = r.uint32();
      const f = tag >>> 3;
      const wt = tag & 7;
      if (f === CHECKSUM_FIELD) {
        // Only the verified one, where it was found: anything else is damage.
        if (tagAt !== checksumAt) throw corrupt(source, 'a checksum field that is not the last 35 bytes of the file');
        r.pos = r.len;
      } else if (f === 102) {
        if (wt !== WIRE_LEN) throw corrupt(source, `bad wire type ${wt} for Meta field ${f}`);
        kernelRelease = r.string();
      } else if (f === 105) {
        if (wt !== WIRE_LEN) throw corrupt(source, `bad wire type ${wt} for Meta field ${f}`);
        classBytes.push(r.bytes());
      } else if (f === 103 || f === 104) {
        if (wt !== WIRE_LEN) throw corrupt(source, `bad wire type ${wt} for Meta field ${f}`);
        const end = r.length() + r.pos;
        compiled.set(f, d.compiled(end));
        r.pos = end;
      } else if (f === 1 || f === 2 || f === 100 || f === 101) {
        if (wt !== WIRE_LEN) throw corrupt(source, `bad wire type ${wt} for Meta field ${f}`);
        const len = r.length();
        const end = r.pos + len;
        if (f === 1) list.push(d.module(end));
        else if (f === 101) {
          const s = d.softdep(end);
          if (s.module !== '') softdeps.set(s.module, { pre: s.pre, post: s.post });
        } else trees.push({ field: f, pos: r.pos, len });
        r.pos = end;
      } else {
        r.skipType(wt);
      }
    }
    if (list.length === 0) throw corrupt(source, 'meta.pb lists no modules');
    modules = list.map((m, i) => {
      if (m.name === '') throw corrupt(source, `module #${i} has no name`);
      if (m.path !== '') checkModulePath(m.path, source);
      for (const dep of m.depends) {
        if (dep >= list.length) {
          throw new HotplugError('E_INDEX_DEP_RANGE', `module ${m.name} depends on index ${dep}, out of range (${list.length} modules)`, {
            file: source,
          });
        }
      }
      return { name: m.name, path: m.path, builtin: m.path === '', deps: m.depends };
    });
    // Compiled matchers make the radix trees redundant (this byte order only).
    const useCompiled = compiled.has(103) && endianness() === 'LE';
    for (const t of useCompiled ? [] : trees) {
      const builder = new TrieBuilder(t.len >> 2);
      d.radix(t.pos, t.pos + t.len, builder, 0, 0, modules.length);
      builders.set(t.field, { builder, count: 0 });
    }
    if (useCompiled) {
      for (const b of classBytes) {
        if (b.length !== 32) throw corrupt(source, 'a byte class is not 32 bytes');
        const set = new Uint32Array(8);
        new Uint8Array(set.buffer).set(b);
        if (classes.intern(set) !== classes.sets.length - 1) throw corrupt(source, 'duplicate byte classes');
      }
    }
    const nModules = modules.length;
    const fromCompiled = (field: number, maxStates: number): CompiledAliases | undefined => {
      const c = compiled.get(field);
      if (!useCompiled || c === undefined) return undefined;
      if (c.format !== 1) throw corrupt(source, `compiled matcher format ${c.format} is unknown`);
      const u32 = (f: number): Uint32Array => {
        const b = c.arrays.get(f) ?? new Uint8Array(0);
        if (b.length % 4 !== 0) throw corrupt(source, `compiled matcher field ${f} is not a uint32 array`);
        return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
      };
      const t: CompiledTrie = {
        edgeStart: u32(3),
        edgeToken: u32(4),
        edgeTarget: u32(5),
        isStar: c.arrays.get(6) ?? new Uint8Array(0),
        valueStart: u32(7),
        values: u32(8),
      };
      if (t.isStar.length !== c.nodes) throw corrupt(source, 'compiled matcher: node count disagrees');
      // Only hotplugd writes compiled matchers, from normalized patterns: a
      // `-` edge means another writer, whose patterns would not match.
      if (t.edgeToken.includes(DASH)) throw corrupt(source, 'compiled matcher: a "-" edge (patterns are not normalized)');
      const m = Matcher.fromCompiled(t, classes, nModules, maxStates);
      if (typeof m === 'string') throw corrupt(source, `compiled matcher: ${m}`);
      return { matcher: m, count: c.patterns };
    };
    compiledAliases = fromCompiled(103, 8192);
    compiledBuiltin = fromCompiled(104, 256);
  } catch (e) {
    if (e instanceof HotplugError) throw e;
    throw corrupt(source, `not a valid meta.pb (${(e as Error).message})`, e);
  }
  checkNoCycles(modules, source);
  const finish = (field: number, maxStates: number): CompiledAliases => {
    const b = builders.get(field)?.builder ?? new TrieBuilder(16);
    const matcher = b.finish(classes, maxStates);
    return { matcher, count: matcher.patternCount() };
  };
  return {
    modules,
    aliases: compiledAliases ?? finish(2, 8192),
    builtinAliases: compiledBuiltin ?? finish(100, 256),
    classes,
    softdeps,
    warnings: [],
    source,
    kind: 'meta.pb',
    kernelRelease,
  };
}
