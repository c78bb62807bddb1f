/**
 * Writing meta.pb (Monogon-compatible; schema: proto/meta.proto) through
 * protobufjs. Only node types Monogon knows are written: a bracket set
 * becomes one BYTE_RANGE branch per contiguous range (the pattern is
 * expanded), and bytes outside printable ASCII are written as one-byte
 * BYTE_RANGEs, since `literal` is a protobuf string (UTF-8) in Monogon's
 * schema. Patterns are stored normalized (no `-` in a LITERAL), so a file
 * this writes reads back unchanged. On a little-endian machine the compiled
 * matchers and byte classes are written too (compiled.ts), and the file
 * ends with its checksum (checksum.ts).
 */
import { endianness } from 'node:os';
import type { Type as ProtobufType } from 'protobufjs';
import { HotplugError } from '../../../errors.js';
import { lazy } from '../../lazy.js';
import { type ClassTable, DASH, MAX_ALIAS_BYTES, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from '../../glob.js';
import { type PatternEntry } from '../../match/index.js';
import { type IndexParts } from '../module-index.js';
import { appendChecksum } from './checksum.js';
import { bytesOf, compiledMsg, encodeCompiledField } from './compiled.js';
import { MetaField, NodeType } from './fields.js';
import { encodeModuleTable, type ModuleTableMsg } from './module-table.js';
import { META_SCHEMA } from './schema.js';

interface RadixNodeMsg {
  type?: number;
  literal?: string;
  startByte?: number;
  endByte?: number;
  children?: RadixNodeMsg[];
  moduleIndex?: number[];
}

interface MetaMsg {
  modules: { name: string; path: string; depends: number[] }[];
  moduleDeviceMatches?: RadixNodeMsg;
  builtinDeviceMatches?: RadixNodeMsg;
  softdeps: { module: string; pre: string[]; post: string[] }[];
  kernelRelease: string;
  byteClasses?: Uint8Array[];
  modulesWithoutFile?: number[];
  moduleTable?: ModuleTableMsg;
}

/** protobufjs, loaded only to encode: decoding uses the small reader below (protobufjs costs 30 ms of start-up). */
export const loadProtobuf = lazy(() => import('protobufjs'));

async function MetaType(): Promise<ProtobufType> {
  const { default: protobuf } = await loadProtobuf();
  // protobufjs refuses messages nested deeper than 100 by default (protoc's
  // default); a radix tree is as deep as its longest pattern, at most
  // MAX_ALIAS_BYTES tokens (longer ones are skipped when the index is built),
  // below Go protobuf's default limit of 10,000 that Monogon's reader applies.
  protobuf.util.recursionLimit = Math.max(protobuf.util.recursionLimit, MAX_ALIAS_BYTES + 16);
  return protobuf.Root.fromJSON(META_SCHEMA).lookupType('hotplugd.meta.Meta');
}

const RANGE = 0x10000;

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

/**
 * Encode index parts as meta.pb bytes. `trailer`: more Meta fields, already
 * encoded, placed just before the checksum (the index cache's record).
 */
export async function encodeMeta(parts: IndexParts, kernelRelease = '', trailer?: Uint8Array, opts: { radix?: boolean; moduleTable?: boolean } = {}): Promise<Uint8Array> {
  // The radix trees are what Monogon reads; hotplugd reads the compiled
  // matchers instead where they are written (little-endian), so a file only
  // hotplugd reads (the index cache) may leave the trees out (opts.radix
  // false), and carry its module list as Meta.module_table instead of
  // Meta.modules (opts.moduleTable; module-table.ts).
  const radix = opts.radix !== false || endianness() !== 'LE';
  const msg: MetaMsg = {
    modules: parts.modules.map((m) => ({ name: m.name, path: m.builtin ? '' : (m.path ?? ''), depends: m.deps })),
    ...(radix
      ? {
          moduleDeviceMatches: buildRadix(parts.aliases.matcher.entries(), parts.classes),
          builtinDeviceMatches: buildRadix(parts.builtinAliases.matcher.entries(), parts.classes),
        }
      : {}),
    softdeps: [...parts.softdeps].map(([module, s]) => ({ module, pre: s.pre, post: s.post })),
    kernelRelease,
  };
  const table = opts.moduleTable === true ? encodeModuleTable(msg.modules) : undefined;
  if (table !== undefined) {
    msg.moduleTable = table;
    msg.modules = [];
  }
  const withoutFile = parts.modules.flatMap((m, i) => (m.path === null && !m.builtin ? [i] : []));
  if (withoutFile.length > 0) msg.modulesWithoutFile = withoutFile;
  const le = endianness() === 'LE';
  if (le) msg.byteClasses = parts.classes.sets.map((set) => bytesOf(set));
  const T = await MetaType();
  const pieces: Uint8Array[] = [T.encode(T.fromObject(msg)).finish()];
  let size = pieces[0]!.length;
  // The compiled matchers after everything protobufjs encodes (field order
  // is free in protobuf), where this file knows their offsets: compiled.ts
  // aligns their arrays.
  if (le) {
    for (const [field, aliases] of [
      [MetaField.compiledDeviceMatches, parts.aliases],
      [MetaField.compiledBuiltinDeviceMatches, parts.builtinAliases],
    ] as const) {
      const piece = encodeCompiledField(field, compiledMsg(aliases), size);
      pieces.push(piece);
      size += piece.length;
    }
  }
  if (trailer !== undefined) {
    pieces.push(trailer);
    size += trailer.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return appendChecksum(out);
}
