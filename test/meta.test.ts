import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { depmodParts } from '../src/sys/indexfs.js';
import { ModuleIndex } from '../src/core/index.js';
import { decodeMeta, encodeMeta } from '../src/core/meta.js';
import { type HotplugError } from '../src/errors.js';
import { FIXTURE_DIR, fixtureLines } from './helpers.js';

const monogonSchema = fileURLToPath(new URL('./fixtures/monogon/meta.proto', import.meta.url));
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

  it('answers the same from the compiled matchers as from the radix trees alone', async () => {
    const bytes = await encodeMeta(fixtureParts());
    const Ours = protobuf.loadSync(fileURLToPath(new URL('../proto/meta.proto', import.meta.url))).lookupType('hotplugd.meta.Meta');
    const msg = Ours.decode(bytes) as unknown as Record<string, unknown>;
    delete msg.compiledDeviceMatches;
    delete msg.compiledBuiltinDeviceMatches;
    msg.byteClasses = [];
    const radixOnly = Ours.encode(msg).finish();
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
