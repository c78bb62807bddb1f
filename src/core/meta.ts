/**
 * Monogon-compatible `meta.pb` (schema: proto/meta.proto), through protobufjs.
 *
 * Decoding turns the radix tree back into token sequences (glob.ts tokens), so
 * a decoded index answers exactly like the one it was written from. Encoding
 * writes only node types Monogon knows: a bracket set becomes one BYTE_RANGE
 * branch per contiguous range (the pattern is expanded), and bytes outside
 * printable ASCII are written as one-byte BYTE_RANGEs, since `literal` is a
 * protobuf string (UTF-8) in Monogon's schema.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { HotplugError } from '../errors.js';
import { checkModulePath, checkNoCycles } from './build-index.js';
import { type SoftdepSpec } from './depmod.js';
import { ClassTable, newByteSet, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from './glob.js';
import { type IndexParts, type ModuleRecord } from './index.js';
import { type PatternEntry } from './matcher.js';

const NodeType = { LITERAL: 0, WILDCARD: 1, SINGLE_WILDCARD: 2, BYTE_RANGE: 3, ROOT: 4 } as const;

interface RadixNodeMsg {
  type?: number;
  literal?: string;
  startByte?: number;
  endByte?: number;
  children?: RadixNodeMsg[];
  moduleIndex?: number[];
}

interface MetaMsg {
  modules?: { name?: string; path?: string; depends?: number[] }[];
  moduleDeviceMatches?: RadixNodeMsg | null;
  builtinDeviceMatches?: RadixNodeMsg | null;
  softdeps?: { module?: string; pre?: string[]; post?: string[] }[];
  kernelRelease?: string;
}

/** Where proto/meta.proto lives: beside src/ in a checkout, beside dist/ when built. */
function protoPath(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [`${here}../../proto/meta.proto`, `${here}../../../proto/meta.proto`];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

let metaType: protobuf.Type | undefined;
function MetaType(): protobuf.Type {
  metaType ??= protobuf.loadSync(protoPath()).lookupType('hotplugd.meta.Meta');
  return metaType;
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
      alts = ranges(classes.sets[t - TOKEN_CLASS]!).map(([lo, hi]) => (lo === hi && lo >= 0x20 && lo < 0x7f ? lo : RANGE | (lo << 8) | hi));
    } else if (t < 256 && (t < 0x20 || t >= 0x7f)) {
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
  const convert = (token: number, n: BuildNode): RadixNodeMsg => {
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
    msg.children = [...n.children.entries()].sort((a, b) => a[0] - b[0]).map(([t, c]) => convert(t, c));
    msg.moduleIndex = n.modules;
    return msg;
  };
  const top = convert(-1, root);
  // convert(-1) produced a LITERAL with a bogus char; the root is ROOT.
  return { type: NodeType.ROOT, children: top.children ?? [], moduleIndex: [] };
}

/** Encode index parts as meta.pb bytes. */
export function encodeMeta(parts: IndexParts, kernelRelease = ''): Uint8Array {
  const msg: MetaMsg = {
    modules: parts.modules.map((m) => ({ name: m.name, path: m.builtin ? '' : (m.path ?? ''), depends: m.deps })),
    moduleDeviceMatches: buildRadix(parts.aliases, parts.classes),
    builtinDeviceMatches: buildRadix(parts.builtinAliases, parts.classes),
    softdeps: [...parts.softdeps].map(([module, s]) => ({ module, pre: s.pre, post: s.post })),
    kernelRelease,
  };
  const T = MetaType();
  return T.encode(T.fromObject(msg)).finish();
}

function corrupt(source: string, problem: string, cause?: unknown): HotplugError {
  return new HotplugError('E_INDEX_CORRUPT', problem, { file: source, cause });
}

/** Walk a radix tree into pattern entries, validating module indices. */
function collectPatterns(root: RadixNodeMsg | null | undefined, nModules: number, classes: ClassTable, source: string): PatternEntry[] {
  const out: PatternEntry[] = [];
  if (!root) return out;
  const classCache = new Map<number, number>();
  const path: number[] = [];
  const visit = (n: RadixNodeMsg, depth: number): void => {
    if (depth > 4096) throw corrupt(source, 'radix tree is deeper than 4096 nodes');
    const before = path.length;
    switch (n.type ?? 0) {
      case NodeType.ROOT:
        if (depth !== 0) throw corrupt(source, 'ROOT node below the root');
        break;
      case NodeType.LITERAL: {
        const lit = n.literal ?? '';
        if (lit === '') throw corrupt(source, 'empty LITERAL node');
        // protobufjs decodes UTF-8; matching is on bytes.
        for (const b of Buffer.from(lit, 'utf8')) path.push(b);
        break;
      }
      case NodeType.WILDCARD:
        path.push(TOKEN_STAR);
        break;
      case NodeType.SINGLE_WILDCARD:
        path.push(TOKEN_ANY);
        break;
      case NodeType.BYTE_RANGE: {
        const lo = n.startByte ?? 0;
        const hi = n.endByte ?? 0;
        if (lo > 255 || hi > 255 || lo > hi) throw corrupt(source, `BYTE_RANGE ${lo}-${hi} is not a byte range`);
        const key = (lo << 8) | hi;
        let id = classCache.get(key);
        if (id === undefined) {
          const set = newByteSet();
          for (let c = lo; c <= hi; c++) set[c >>> 5]! |= 1 << (c & 31);
          id = classes.intern(set);
          classCache.set(key, id);
        }
        path.push(TOKEN_CLASS + id);
        break;
      }
      default:
        throw corrupt(source, `unknown radix node type ${n.type}`);
    }
    for (const m of n.moduleIndex ?? []) {
      if (m >= nModules) {
        throw new HotplugError('E_INDEX_DEP_RANGE', `module_index ${m} is out of range (${nModules} modules)`, { file: source });
      }
      out.push({ tokens: String.fromCharCode(...path), value: m });
    }
    for (const c of n.children ?? []) visit(c, depth + 1);
    path.length = before;
  };
  visit(root, 0);
  return out;
}

/** Decode meta.pb bytes into index parts; throws HotplugError on anything malformed. */
export function decodeMeta(bytes: Uint8Array, source: string): IndexParts & { kernelRelease: string } {
  let msg: MetaMsg;
  try {
    const T = MetaType();
    msg = T.toObject(T.decode(bytes), { defaults: false, arrays: true }) as MetaMsg;
  } catch (e) {
    throw corrupt(source, `not a valid meta.pb (${(e as Error).message})`, e);
  }
  const list = msg.modules ?? [];
  if (list.length === 0) throw corrupt(source, 'meta.pb lists no modules');
  const modules: ModuleRecord[] = list.map((m, i) => {
    const name = m.name ?? '';
    if (name === '') throw corrupt(source, `module #${i} has no name`);
    const path = m.path ?? '';
    if (path !== '') checkModulePath(path, source);
    const deps = m.depends ?? [];
    for (const d of deps) {
      if (d >= list.length) {
        throw new HotplugError('E_INDEX_DEP_RANGE', `module ${name} depends on index ${d}, out of range (${list.length} modules)`, {
          file: source,
        });
      }
    }
    return { name, path, builtin: path === '', deps };
  });
  checkNoCycles(modules, source);
  const classes = new ClassTable();
  const softdeps = new Map<string, SoftdepSpec>();
  for (const s of msg.softdeps ?? []) if (s.module) softdeps.set(s.module, { pre: s.pre ?? [], post: s.post ?? [] });
  return {
    modules,
    aliases: collectPatterns(msg.moduleDeviceMatches, modules.length, classes, source),
    builtinAliases: collectPatterns(msg.builtinDeviceMatches, modules.length, classes, source),
    classes,
    softdeps,
    warnings: [],
    source,
    kernelRelease: msg.kernelRelease ?? '',
  };
}
