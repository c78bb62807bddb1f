import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { depmodParts } from '../../../../../src/sys/indexfs.js';
import { ModuleIndex } from '../../../../../src/core/index/module-index.js';
import { appendChecksum, decodeMeta } from '../../../../../src/core/index/meta/read.js';
import { encodeMeta } from '../../../../../src/core/index/meta/write.js';
import { META_SCHEMA } from '../../../../../src/core/index/meta/schema.js';
import { type HotplugError } from '../../../../../src/errors.js';
import { FIXTURE_DIR, fixtureLines } from '../../../../support/helpers.js';

const monogonSchema = fileURLToPath(new URL('../../../../fixtures/monogon/meta.proto', import.meta.url));
const MonogonMeta = protobuf.loadSync(monogonSchema).lookupType('osbase.kmod.spec.Meta');

function fixtureParts() {
  return depmodParts(FIXTURE_DIR);
}

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as HotplugError).code;
  }
  return undefined;
}

describe('meta.pb', () => {
  it('carries the schema of proto/meta.proto as data (src/core/index/meta/schema.ts is generated from it)', () => {
    const fromFile = protobuf.loadSync(fileURLToPath(new URL('../../../../../proto/meta.proto', import.meta.url))).toJSON();
    expect(JSON.parse(JSON.stringify(META_SCHEMA))).toEqual(JSON.parse(JSON.stringify(fromFile)));
  });

  it('round-trips the Debian index: depmod -> meta.pb -> index gives the same answers', async () => {
    const parts = fixtureParts();
    const bytes = await encodeMeta(parts, '6.1.0-56-amd64');
    const fromText = new ModuleIndex(parts);
    const decoded = decodeMeta(bytes, 'meta.pb');
    expect(decoded.kernelRelease).toBe('6.1.0-56-amd64');
    const fromMeta = new ModuleIndex(decoded);
    const corpus = fixtureLines('corpus.txt').filter((q) => !q.startsWith('symbol:'));
    const diffs: string[] = [];
    for (const q of corpus) {
      const a = [...fromText.lookup(q).names].sort().join(' ');
      const b = [...fromMeta.lookup(q).names].sort().join(' ');
      if (a !== b) diffs.push(`${q}: text [${a}] meta [${b}]`);
    }
    expect(diffs).toEqual([]);
    expect(fromMeta.moduleByName('snd_hda_intel')?.deps.map((d) => fromMeta.modules[d]!.name)).toEqual(
      fromText.moduleByName('snd_hda_intel')?.deps.map((d) => fromText.modules[d]!.name),
    );
  });

  it('answers the same when read as hotplugd\'s own index cache (stored byte classes, no pass over every edge) as from depmod\'s text', async () => {
    const parts = fixtureParts();
    const bytes = await encodeMeta(parts, '', undefined, { radix: false });
    const fromText = new ModuleIndex(parts);
    const own = new ModuleIndex(decodeMeta(bytes, 'cache.idx', undefined, true));
    const diffs: string[] = [];
    for (const q of fixtureLines('corpus.txt').filter((x) => !x.startsWith('symbol:'))) {
      const a = fromText.lookup(q).names.join(' ');
      const b = own.lookup(q).names.join(' ');
      if (a !== b) diffs.push(`${q}: text [${a}] own cache [${b}]`);
    }
    expect(diffs.slice(0, 20)).toEqual([]);
    expect(own.matcherStats().byteClasses).toBe(fromText.matcherStats().byteClasses);
  });

  it('answers the same from the compiled matchers as from the radix trees alone', async () => {
    const bytes = await encodeMeta(fixtureParts());
    const Ours = protobuf.loadSync(fileURLToPath(new URL('../../../../../proto/meta.proto', import.meta.url))).lookupType('hotplugd.meta.Meta');
    const msg = Ours.decode(bytes) as unknown as Record<string, unknown>;
    delete msg.compiledDeviceMatches;
    delete msg.compiledBuiltinDeviceMatches;
    delete msg.checksum;
    delete msg.crc32;
    msg.byteClasses = [];
    const radixOnly = appendChecksum(Ours.encode(msg).finish());
    expect(radixOnly.length).toBeLessThan(bytes.length / 2);
    const compiled = new ModuleIndex(decodeMeta(bytes, 'meta.pb'));
    const radix = new ModuleIndex(decodeMeta(radixOnly, 'radix.pb'));
    const diffs: string[] = [];
    for (const q of fixtureLines('corpus.txt').filter((x) => !x.startsWith('symbol:'))) {
      const a = compiled.lookup(q).names.join(' ');
      const b = radix.lookup(q).names.join(' ');
      if (a !== b) diffs.push(`${q}: compiled [${a}] radix [${b}]`);
    }
    expect(diffs.slice(0, 20)).toEqual([]);
  });

  it('writes each compiled array at a multiple of 8 bytes into the file and reads it in place; from a misaligned buffer, as a copy', async () => {
    const bytes = await encodeMeta(fixtureParts());
    const t = decodeMeta(bytes, 'meta.pb').aliases.matcher.compiled();
    for (const a of Object.values(t) as Uint8Array[]) {
      expect(a.buffer).toBe(bytes.buffer);
      expect((a.byteOffset - bytes.byteOffset) % 8).toBe(0);
    }
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    const u = decodeMeta(shifted, 'meta.pb').aliases.matcher.compiled();
    expect(u.edgeTarget.buffer).not.toBe(shifted.buffer);
    expect(Buffer.from(u.edgeTarget.buffer, u.edgeTarget.byteOffset, u.edgeTarget.byteLength).equals(Buffer.from(t.edgeTarget.buffer, t.edgeTarget.byteOffset, t.edgeTarget.byteLength))).toBe(true);
  });

  it('refuses compiled matchers whose arrays point out of range', async () => {
    const bytes = Buffer.from(await encodeMeta(fixtureParts()));
    // Field 103's edge_target (field 5) sits inside; overwrite a stretch of the file's tail third with 0xff.
    const broken = Buffer.from(bytes);
    const at = broken.indexOf(Buffer.from([0x2a]), Math.floor(bytes.length * 0.7)); // some byte inside the arrays
    broken.fill(0xff, at, at + 64);
    const code = codeOf(() => decodeMeta(broken, 'x.pb'));
    expect(['E_INDEX_CORRUPT', 'E_INDEX_DEP_RANGE']).toContain(code);
  });

  it('writes files that decode with Monogon schema (only its node types)', async () => {
    const bytes = await encodeMeta(fixtureParts());
    const msg = MonogonMeta.toObject(MonogonMeta.decode(bytes)) as { modules: unknown[]; moduleDeviceMatches: { type: number } };
    expect(msg.modules.length).toBeGreaterThan(4000);
    const types = new Set<number>();
    const walk = (n: { type?: number; children?: unknown[] }): void => {
      types.add(n.type ?? 0);
      for (const c of n.children ?? []) walk(c as typeof n);
    };
    walk(msg.moduleDeviceMatches);
    expect([...types].every((t) => t >= 0 && t <= 4)).toBe(true);
  });

  it('reads a file written with Monogon schema', () => {
    const bytes = MonogonMeta.encode(
      MonogonMeta.fromObject({
        modules: [
          { name: 'virtio_net', path: 'kernel/drivers/net/virtio_net.ko', depends: [1] },
          { name: 'net_failover', path: 'kernel/drivers/net/net_failover.ko' },
          { name: 'ext4', path: '' },
        ],
        moduleDeviceMatches: {
          type: 4,
          children: [
            {
              type: 0,
              literal: 'virtio:d',
              children: [
                { type: 0, literal: '00000001v', children: [{ type: 1, moduleIndex: [0] }] },
                { type: 3, startByte: 0x41, endByte: 0x43, children: [{ type: 2, moduleIndex: [1] }] },
              ],
            },
          ],
        },
      }),
    ).finish();
    const index = new ModuleIndex(decodeMeta(bytes, 'monogon.pb'));
    expect(index.lookup('virtio:d00000001v00001AF4').names).toEqual(['virtio_net']);
    expect(index.lookup('virtio:dBx').names).toEqual(['net_failover']);
    expect(index.lookup('virtio:dDx').names).toEqual([]);
    expect(index.moduleByName('ext4')?.builtin).toBe(true);
    expect(index.moduleByName('virtio_net')?.deps).toEqual([1]);
  });

  it('refuses a truncated or corrupt file with E_INDEX_CORRUPT', async () => {
    const bytes = await encodeMeta(fixtureParts());
    expect(codeOf(() => decodeMeta(bytes.subarray(0, bytes.length - 7), 'x.pb'))).toBe('E_INDEX_CORRUPT');
    expect(codeOf(() => decodeMeta(Buffer.from('this is not protobuf at all, surely'), 'x.pb'))).toBe('E_INDEX_CORRUPT');
    expect(codeOf(() => decodeMeta(new Uint8Array(0), 'x.pb'))).toBe('E_INDEX_CORRUPT');
  });

  it('refuses out-of-range dependency and module indices with E_INDEX_DEP_RANGE', () => {
    const enc = (o: object): Uint8Array => MonogonMeta.encode(MonogonMeta.fromObject(o)).finish();
    expect(codeOf(() => decodeMeta(enc({ modules: [{ name: 'a', path: 'a.ko', depends: [5] }] }), 'x.pb'))).toBe('E_INDEX_DEP_RANGE');
    expect(
      codeOf(() => decodeMeta(enc({ modules: [{ name: 'a', path: 'a.ko' }], moduleDeviceMatches: { type: 4, moduleIndex: [3] } }), 'x.pb')),
    ).toBe('E_INDEX_DEP_RANGE');
  });

  it('refuses dependency cycles with E_INDEX_DEP_CYCLE, naming the modules', () => {
    const enc = MonogonMeta.encode(
      MonogonMeta.fromObject({
        modules: [
          { name: 'a', path: 'a.ko', depends: [1] },
          { name: 'b', path: 'b.ko', depends: [2] },
          { name: 'c', path: 'c.ko', depends: [0] },
        ],
      }),
    ).finish();
    expect(() => decodeMeta(enc, 'x.pb')).toThrow(/dependency cycle: a -> b -> c -> a/);
    expect(codeOf(() => decodeMeta(enc, 'x.pb'))).toBe('E_INDEX_DEP_CYCLE');
  });

  it('refuses module paths that escape the module directory with E_PATH_ESCAPE', () => {
    for (const path of ['../../etc/evil.ko', '/lib/modules/x.ko', 'kernel/../../x.ko']) {
      const enc = MonogonMeta.encode(MonogonMeta.fromObject({ modules: [{ name: 'a', path }] })).finish();
      expect(codeOf(() => decodeMeta(enc, 'x.pb'))).toBe('E_PATH_ESCAPE');
    }
  });
});

/**
 * Monogon's radix tree from raw patterns, as its tooling writes it: aliases
 * as modules declare them (no `-` to `_`), literal runs merged into LITERAL
 * nodes, a one-range bracket as BYTE_RANGE.
 */
function monogonTree(aliases: readonly { pattern: string; module: number }[]): object {
  interface N {
    kids: Map<string, N>;
    mods: number[];
  }
  const root: N = { kids: new Map(), mods: [] };
  for (const { pattern, module } of aliases) {
    let n = root;
    for (const tok of pattern.match(/\[[^\]]*\]|./g)!) {
      let c = n.kids.get(tok);
      if (!c) n.kids.set(tok, (c = { kids: new Map(), mods: [] }));
      n = c;
    }
    n.mods.push(module);
  }
  const node = (tok: string, n: N): object => {
    if (tok === '*') return { type: 1, children: kids(n), moduleIndex: n.mods };
    if (tok === '?') return { type: 2, children: kids(n), moduleIndex: n.mods };
    if (tok.startsWith('[')) return { type: 3, startByte: tok.charCodeAt(1), endByte: tok.charCodeAt(3), children: kids(n), moduleIndex: n.mods };
    let literal = tok;
    while (n.mods.length === 0 && n.kids.size === 1) {
      const [t, c] = [...n.kids][0]!;
      if (t === '*' || t === '?' || t.startsWith('[')) break;
      literal += t;
      n = c;
    }
    return { type: 0, literal, children: kids(n), moduleIndex: n.mods };
  };
  const kids = (n: N): object[] => [...n.kids].map(([t, c]) => node(t, c));
  return { type: 4, children: kids(root) };
}

describe('meta.pb from Monogon tooling (patterns as modules declare them)', () => {
  // modinfo-style aliases: dashes, char-major-*, devname:*, one-range brackets
  // with a dash beside them, and siblings that collide after normalization.
  const modules = ['gpio_kempld', 'btrfs', 'coda', 'dash_mod', 'underscore_mod', 'snd_hda_intel', 'ranged'];
  const aliases = [
    { pattern: 'platform:kempld-gpio', module: 0 },
    { pattern: 'devname:btrfs-control', module: 1 },
    { pattern: 'char-major-10-234', module: 1 },
    { pattern: 'fs-btrfs', module: 1 },
    { pattern: 'char-major-67-*', module: 2 },
    { pattern: 'fs-a-b', module: 3 },
    { pattern: 'fs-a_b', module: 4 },
    { pattern: 'x-y-*-z', module: 3 },
    { pattern: 'x_y_*', module: 4 },
    { pattern: 'pci:v00008086d*sv*sd*bc04sc03i00', module: 5 },
    { pattern: 'acpi*:PNP0[A-C]0-*:*', module: 6 },
    { pattern: 'of:N*T*Cvendor,chip-[0-9]', module: 6 },
  ];
  const queries = [
    'platform:kempld-gpio', 'platform:kempld_gpio', 'platform:kempld-gpiox',
    'devname:btrfs-control', 'devname:btrfs_control', 'char-major-10-234', 'char_major_10_234', 'fs-btrfs',
    'char-major-67-0', 'char-major-67-', 'char_major_67_255', 'char-major-6-7',
    'fs-a-b', 'fs-a_b', 'fs_a-b', 'fs-a', 'fs-a-bc',
    'x-y-q-z', 'x_y_q_z', 'x-y-', 'x-y-1-2-z',
    'pci:v00008086d00001234sv0sd0bc04sc03i00', 'acpi:PNP0B0-1:x', 'acpi:PNP0B0_1:x', 'acpi:PNP0D0-1:x', 'acpiX:PNP0A0-:',
    'of:NxTyCvendor,chip-3', 'of:NxTyCvendor,chip_3', 'of:NxTyCvendor,chip-x', 'nothing-at-all',
  ];

  // Recorded with kmod 30 (modprobe -R) on a depmod tree of .ko files with
  // exactly these aliases (gcc objects with a .modinfo section, depmod -b, modprobe -d -S -R): libkmod's answers.
  const LIBKMOD: Record<string, string> = {
    'platform:kempld-gpio': 'gpio_kempld',
    'platform:kempld_gpio': 'gpio_kempld',
    'platform:kempld-gpiox': '',
    'devname:btrfs-control': 'btrfs',
    'devname:btrfs_control': 'btrfs',
    'char-major-10-234': 'btrfs',
    'char_major_10_234': 'btrfs',
    'fs-btrfs': 'btrfs',
    'char-major-67-0': 'coda',
    'char-major-67-': 'coda',
    'char_major_67_255': 'coda',
    'char-major-6-7': '',
    'fs-a-b': 'dash_mod underscore_mod',
    'fs-a_b': 'dash_mod underscore_mod',
    'fs_a-b': 'dash_mod underscore_mod',
    'fs-a': '',
    'fs-a-bc': '',
    'x-y-q-z': 'dash_mod underscore_mod',
    'x_y_q_z': 'dash_mod underscore_mod',
    'x-y-': 'underscore_mod',
    'x-y-1-2-z': 'dash_mod underscore_mod',
    'pci:v00008086d00001234sv0sd0bc04sc03i00': 'snd_hda_intel',
    'acpi:PNP0B0-1:x': 'ranged',
    'acpi:PNP0B0_1:x': 'ranged',
    'acpi:PNP0D0-1:x': '',
    'acpiX:PNP0A0-:': 'ranged',
    'of:NxTyCvendor,chip-3': 'ranged',
    'of:NxTyCvendor,chip_3': 'ranged',
    'of:NxTyCvendor,chip-x': '',
    'nothing-at-all': '',
  };

  function monogonFile(): Uint8Array {
    return MonogonMeta.encode(
      MonogonMeta.fromObject({
        modules: modules.map((name) => ({ name, path: `kernel/${name}.ko` })),
        moduleDeviceMatches: monogonTree(aliases),
      }),
    ).finish();
  }

  /** The reference: the same aliases as depmod's text index, read by the depmod reader (checked against libkmod on the corpus). */
  function depmodIndex(): ModuleIndex {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-monogon-'));
    writeFileSync(join(dir, 'modules.dep'), modules.map((m) => `kernel/${m}.ko:\n`).join(''));
    writeFileSync(join(dir, 'modules.alias'), aliases.map((a) => `alias ${a.pattern} ${modules[a.module]}\n`).join(''));
    return new ModuleIndex(depmodParts(dir));
  }

  it("answers every query as depmod's index of the same aliases does", () => {
    const fromMonogon = new ModuleIndex(decodeMeta(monogonFile(), 'monogon.pb'));
    const reference = depmodIndex();
    const diffs = queries
      .map((q) => ({ q, want: [...reference.lookup(q).names].sort(), got: [...fromMonogon.lookup(q).names].sort() }))
      .filter((d) => d.want.join(' ') !== d.got.join(' '))
      .map((d) => `${d.q}: depmod [${d.want.join(' ')}] meta.pb [${d.got.join(' ')}]`);
    expect(diffs).toEqual([]);
  });

  it('answers every query as libkmod does on the same aliases', () => {
    const fromMonogon = new ModuleIndex(decodeMeta(monogonFile(), 'monogon.pb'));
    expect(Object.keys(LIBKMOD).sort()).toEqual([...queries].sort());
    const got = Object.fromEntries(queries.map((q) => [q, [...fromMonogon.lookup(q).names].sort().join(' ')]));
    expect(got).toEqual(LIBKMOD);
  });

  it('keeps the normalized answers through a hotplugd re-encode (build-meta never writes a "-" literal)', async () => {
    const reference = depmodIndex();
    const again = new ModuleIndex(decodeMeta(await encodeMeta(decodeMeta(monogonFile(), 'monogon.pb')), 'again.pb'));
    for (const q of queries) expect([...again.lookup(q).names].sort(), q).toEqual([...reference.lookup(q).names].sort());
  });
});
