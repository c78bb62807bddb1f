/**
 * Meta.module_table, the index cache's module list as columns: it reads back
 * as the same records Meta.modules gives, and a damaged table is refused
 * with the problem named.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { ModuleIndex } from '../../../../../src/core/index/module-index.js';
import { appendChecksum, decodeMeta } from '../../../../../src/core/index/meta/read.js';
import { encodeModuleTable } from '../../../../../src/core/index/meta/module-table.js';
import { META_SCHEMA } from '../../../../../src/core/index/meta/schema.js';
import { encodeMeta } from '../../../../../src/core/index/meta/write.js';
import { HotplugError } from '../../../../../src/errors.js';
import { depmodParts } from '../../../../../src/sys/indexfs.js';
import { smallDepmodDir } from '../../../../support/small-index.js';

const Meta = protobuf.Root.fromJSON(META_SCHEMA).lookupType('hotplugd.meta.Meta');

type Msg = Record<string, unknown> & { moduleTable?: Record<string, Uint8Array>; modules?: unknown[] };

/** The file re-encoded after `edit` (its checksum recomputed: the damage is the point, not the checksum). */
function edited(bytes: Uint8Array, edit: (m: Msg) => void): Uint8Array {
  const msg = Meta.toObject(Meta.decode(bytes), { bytes: Uint8Array as unknown as StringConstructor }) as Msg;
  delete msg.crc32;
  delete msg.checksum;
  edit(msg);
  return appendChecksum(Meta.encode(Meta.fromObject(msg)).finish());
}

function problem(bytes: Uint8Array): string {
  try {
    decodeMeta(bytes, 'c.idx');
  } catch (e) {
    expect(e).toBeInstanceOf(HotplugError);
    return `${(e as HotplugError).code}: ${(e as HotplugError).message}`;
  }
  return 'accepted';
}

describe('module table', () => {
  const { dir, queries } = smallDepmodDir(['ahci', 'virtio_net', 'uas'], 20);
  const parts = depmodParts(dir);
  // A built-in (empty path) and a module no index has a file for (Meta.modules_without_file).
  parts.modules.push({ name: 'builtin_x', path: '', builtin: true, deps: [] }, { name: 'nofile_x', path: null, builtin: false, deps: [0] });

  it('reads back as the module list Meta.modules gives (names, paths, built-ins, dependencies), and answers the same', async () => {
    const listed = await encodeMeta(parts, '', undefined, { radix: false });
    const tabled = await encodeMeta(parts, '', undefined, { radix: false, moduleTable: true });
    expect((Meta.decode(tabled) as unknown as Msg).modules).toEqual([]);
    const a = decodeMeta(listed, 'a');
    const b = decodeMeta(tabled, 'b');
    expect(b.modules).toEqual(a.modules);
    expect(b.modules.find((m) => m.name === 'builtin_x')).toEqual({ name: 'builtin_x', path: '', builtin: true, deps: [] });
    expect(b.modules.find((m) => m.name === 'nofile_x')).toEqual({ name: 'nofile_x', path: null, builtin: false, deps: [0] });
    expect(b.modules.some((m) => m.deps.length > 1)).toBe(true);
    const ia = new ModuleIndex(a);
    const ib = new ModuleIndex(b);
    expect(queries.map((q) => ib.lookup(q).names)).toEqual(queries.map((q) => ia.lookup(q).names));
  });

  it('is not written when a name holds a line feed (Meta.modules is)', () => {
    expect(encodeModuleTable([{ name: 'a\nb', path: 'a.ko', depends: [] }])).toBeUndefined();
  });

  it('refuses a damaged table, naming the problem', async () => {
    const good = await encodeMeta(parts, '', undefined, { radix: false, moduleTable: true });
    const u32 = (xs: number[]): Uint8Array => new Uint8Array(Uint32Array.from(xs).buffer);
    const t = (Meta.decode(good) as unknown as Msg).moduleTable!;
    const n = new Uint32Array(new Uint8Array(t.depStart!).buffer).length - 1;
    const cases: [string, (m: Msg) => void][] = [
      ['E_INDEX_CORRUPT: c.idx: module table: names do not hold', (m) => (m.moduleTable!.names = Buffer.from('x\n'))],
      ['E_INDEX_CORRUPT: c.idx: module table: paths do not hold', (m) => (m.moduleTable!.paths = Buffer.from('x'))],
      ['E_INDEX_CORRUPT: c.idx: module table: dep_start is not a uint32 array', (m) => (m.moduleTable!.depStart = new Uint8Array(3))],
      ['E_INDEX_CORRUPT: c.idx: module table: dependency offsets disagree', (m) => (m.moduleTable!.deps = new Uint8Array(0))],
      ['E_INDEX_CORRUPT: c.idx: module table: dependency offsets go backwards', (m) => {
        const starts = Array.from(new Uint32Array(new Uint8Array(m.moduleTable!.depStart!).buffer));
        starts[1] = starts[n]! + 1;
        m.moduleTable!.depStart = u32(starts);
      }],
      ['E_INDEX_DEP_RANGE: c.idx: module', (m) => (m.moduleTable!.deps = u32(Array.from(new Uint32Array(new Uint8Array(m.moduleTable!.deps!).buffer), () => n + 5)))],
      ['E_INDEX_CORRUPT: c.idx: both a module list and a module table', (m) => (m.modules = [{ name: 'x', path: 'x.ko' }])],
    ];
    for (const [want, edit] of cases) expect(problem(edited(good, edit)), want).toContain(want);
    expect(problem(edited(good, () => {}))).toBe('accepted');
  });

  it('is checked less when read as hotplugd\'s own index cache: cycles were checked when it was built; paths (relative, no "..") and dependency ranges still are', async () => {
    const good = await encodeMeta(parts, '', undefined, { radix: false, moduleTable: true });
    const t = (Meta.decode(good) as unknown as Msg).moduleTable!;
    const starts = new Uint32Array(new Uint8Array(t.depStart!).buffer);
    const n = starts.length - 1;
    // Module 0 depends on itself: a cycle.
    const cyclic = edited(good, (m) => {
      const deps = Array.from(new Uint32Array(new Uint8Array(m.moduleTable!.deps!).buffer));
      deps.splice(starts[0]!, 0, 0);
      m.moduleTable!.deps = new Uint8Array(Uint32Array.from(deps).buffer);
      m.moduleTable!.depStart = new Uint8Array(Uint32Array.from(Array.from(starts, (x, i) => (i === 0 ? x : x + 1))).buffer);
    });
    expect(problem(cyclic)).toMatch(/^E_INDEX_DEP_CYCLE: /);
    expect(decodeMeta(cyclic, 'c.idx', undefined, true).modules[0]!.deps).toContain(0);
    const absolute = edited(good, (m) => (m.moduleTable!.paths = Buffer.from(`/opt/x.ko\n${Buffer.from(m.moduleTable!.paths!).toString().split('\n').slice(1).join('\n')}`)));
    expect(problem(absolute)).toMatch(/^E_PATH_ESCAPE: /);
    expect(() => decodeMeta(absolute, 'c.idx', undefined, true)).toThrow(/E_PATH_ESCAPE|module path is absolute/);
    const dotdot = edited(good, (m) => (m.moduleTable!.paths = Buffer.from(`kernel/../../x.ko\n${Buffer.from(m.moduleTable!.paths!).toString().split('\n').slice(1).join('\n')}`)));
    expect(() => decodeMeta(dotdot, 'c.idx', undefined, true)).toThrow(/".." component/);
    const outOfRange = edited(good, (m) => (m.moduleTable!.deps = new Uint8Array(Uint32Array.from(Array.from(new Uint32Array(new Uint8Array(m.moduleTable!.deps!).buffer), () => n)).buffer)));
    expect(() => decodeMeta(outOfRange, 'c.idx', undefined, true)).toThrow(/out of range/);
  });
});
