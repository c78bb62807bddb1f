/**
 * Meta.module_table (field 110; schema: proto/meta.proto): the module list of
 * hotplugd's index cache as columns — all names in one field, all paths in
 * another, the dependencies as two uint32 arrays — instead of one Module
 * message per module. Decoding ~4,250 Module messages (three fields each,
 * two strings) was ~5 ms of every start from the cache here, and is cold
 * code; the columns are two string decodes and a loop (~1 ms). Monogon never
 * reads the index cache, so it needs no Meta.modules; a meta.pb keeps
 * Meta.modules (write.ts).
 *
 * The records decoded here pass the same checks as those of Meta.modules
 * (checkDecodedModules, checkNoCycles: read.ts).
 */
import { endianness } from 'node:os';
import { type ModuleRecord } from '../module-index.js';
import { ModuleTableField, WIRE_LEN } from './fields.js';
import { corrupt, type Wire } from './wire.js';

/** Module table as protobufjs encodes it (write.ts). */
export interface ModuleTableMsg {
  names: Uint8Array;
  paths: Uint8Array;
  depStart: Uint8Array;
  deps: Uint8Array;
}

const LE = endianness() === 'LE';

function u32Bytes(values: Uint32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint32(i * 4, values[i]!, true);
  return out;
}

/**
 * The table for `modules` (names and paths as written in Meta.modules: a
 * built-in's path is empty). Returns undefined when a name or path holds a
 * line feed, which the table cannot carry: the caller writes Meta.modules.
 */
export function encodeModuleTable(modules: readonly { name: string; path: string; depends: readonly number[] }[]): ModuleTableMsg | undefined {
  if (modules.some((m) => m.name.includes('\n') || m.path.includes('\n'))) return undefined;
  const depStart = new Uint32Array(modules.length + 1);
  let n = 0;
  modules.forEach((m, i) => {
    depStart[i] = n;
    n += m.depends.length;
  });
  depStart[modules.length] = n;
  const deps = new Uint32Array(n);
  n = 0;
  for (const m of modules) for (const d of m.depends) deps[n++] = d;
  const lines = (xs: string[]): Uint8Array => Buffer.from(xs.map((x) => `${x}\n`).join(''), 'utf8');
  return { names: lines(modules.map((m) => m.name)), paths: lines(modules.map((m) => m.path)), depStart: u32Bytes(depStart), deps: u32Bytes(deps) };
}

/** Little-endian uint32 bytes as an array (a view where aligned on this byte order). */
function u32Array(b: Uint8Array, what: string, source: string): Uint32Array {
  if (b.length % 4 !== 0) throw corrupt(source, `module table: ${what} is not a uint32 array`);
  if (LE) {
    if (b.byteOffset % 4 === 0) return new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
    return new Uint32Array(new Uint8Array(b).buffer); // a copy, aligned
  }
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  const out = new Uint32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** The lines of a names or paths column: `count` of them, each ended by a line feed. */
function lines(r: Wire, b: { start: number; end: number } | undefined, count: number, what: string): string[] {
  const text = b === undefined ? '' : Buffer.from(r.buf.buffer, r.buf.byteOffset + b.start, b.end - b.start).toString('utf8');
  const out = text.split('\n');
  if (out.pop() !== '' || out.length !== count) throw corrupt(r.source, `module table: ${what} do not hold ${count} lines`);
  return out;
}

/** A ModuleTable message ending at `end`, as module records (not yet checked: checkDecodedModules). */
export function readModuleTable(r: Wire, end: number): (ModuleRecord & { path: string })[] {
  const fields = new Map<number, { start: number; end: number }>();
  while (r.pos < end) {
    r.next();
    const f = r.field;
    if (f >= ModuleTableField.names && f <= ModuleTableField.deps) {
      r.expect(WIRE_LEN, `ModuleTable field ${f}`);
      const n = r.length();
      fields.set(f, { start: r.pos, end: r.pos + n });
      r.pos += n;
    } else r.skipField();
  }
  const bytes = (f: number): Uint8Array => {
    const b = fields.get(f);
    return b === undefined ? new Uint8Array(0) : r.buf.subarray(b.start, b.end);
  };
  const depStart = u32Array(bytes(ModuleTableField.depStart), 'dep_start', r.source);
  const deps = u32Array(bytes(ModuleTableField.deps), 'deps', r.source);
  const count = depStart.length - 1;
  if (count < 0 || depStart[0] !== 0 || depStart[count] !== deps.length) throw corrupt(r.source, 'module table: dependency offsets disagree');
  const names = lines(r, fields.get(ModuleTableField.names), count, 'names');
  const paths = lines(r, fields.get(ModuleTableField.paths), count, 'paths');
  const out = new Array<ModuleRecord & { path: string }>(count);
  for (let i = 0; i < count; i++) {
    const lo = depStart[i]!;
    const hi = depStart[i + 1]!;
    if (hi < lo || hi > deps.length) throw corrupt(r.source, 'module table: dependency offsets go backwards');
    const d = new Array<number>(hi - lo);
    for (let j = lo; j < hi; j++) d[j - lo] = deps[j]!;
    out[i] = { name: names[i]!, path: paths[i]!, builtin: false, deps: d };
  }
  return out;
}
