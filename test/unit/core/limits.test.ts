/**
 * Input-controlled sizes never recurse or go quadratic: dependency depth,
 * alias length, stars in a glob, query length (issue 8, findings 6 and 11).
 * Bounds are asserted as outcomes (answers, no RangeError, peak RSS growth),
 * never as timings.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { emptyConfig, parseModprobeConf } from '../../../src/core/config.js';
import { indexFromDepmod } from '../../../src/core/index/from-depmod.js';
import { readModinfo } from '../../../src/core/index/elf.js';
import { ClassTable, compilePattern, MAX_ALIAS_BYTES, tokensMatch } from '../../../src/core/glob.js';
import { type IndexParts, ModuleIndex } from '../../../src/core/index/module-index.js';
import { Matcher } from '../../../src/core/match/index.js';
import { decodeMeta } from '../../../src/core/index/meta/read.js';
import { encodeMeta } from '../../../src/core/index/meta/write.js';
import { loadOrder, type PlanStep, type StepRole } from '../../../src/core/plan.js';
import { depmodParts } from '../../../src/sys/indexfs.js';
import { buildElf } from '../../support/elf.js';
import { FIXTURE_DIR, glibcFnmatch, randomString, rng } from '../../support/helpers.js';

/** Growth of this process's peak RSS while f runs, in MB (ru_maxrss is in KiB). */
function peakGrowthMB<T>(f: () => T): { value: T; mb: number } {
  const before = process.resourceUsage().maxRSS;
  const value = f();
  return { value, mb: (process.resourceUsage().maxRSS - before) / 1024 };
}

const STARS = `${'*a'.repeat(1000)}*`;

// First in the file: peak RSS only grows, so an earlier test's peak would hide these.
describe('glob matching of many stars against long keys', () => {
  it('answers a modprobe.d alias of 1,000 stars against a 3 KB modalias through the index', () => {
    const cfg = emptyConfig();
    parseModprobeConf(`alias ${STARS} snd_hda_intel\n`, 'stars.conf', cfg);
    const index = new ModuleIndex(depmodParts(FIXTURE_DIR), cfg);
    const { value, mb } = peakGrowthMB(() => [index.lookup(`pci:${'abb'.repeat(1000)}`), index.lookup(`pci:${'ab'.repeat(999)}`)]);
    expect(value[0]).toMatchObject({ source: 'config', names: ['snd_hda_intel'] });
    expect(value[1]).toMatchObject({ source: 'none', names: [] });
    expect(mb).toBeLessThan(32);
  });

  it('matches 1,000 stars against 3 KB and 1 MB keys with the right answer and bounded memory', () => {
    const classes = new ClassTable();
    const tokens = compilePattern(STARS, classes, false)!;
    const cases: [string, boolean][] = [
      ['abb'.repeat(1000), true], // 1,000 a's in 3,000 bytes
      [`${'ab'.repeat(999)}${'b'.repeat(1002)}`, false], // 999 a's
      [`${'b'.repeat(1 << 20)}${'a'.repeat(1000)}`, true],
      [`${'b'.repeat(1 << 20)}${'a'.repeat(999)}`, false],
      [`${'ab'.repeat(1 << 19)}`, true],
    ];
    const { value, mb } = peakGrowthMB(() => cases.map(([key]) => tokensMatch(tokens, key, classes)));
    expect(value).toEqual(cases.map(([, want]) => want));
    expect(mb).toBeLessThan(32);
  });

  it('agrees with glibc fnmatch on patterns full of stars', () => {
    // glibc backtracks exponentially on failing star patterns: keep them small.
    const r = rng(777);
    const disagreements: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let pattern = '';
      const parts = 1 + r(6);
      for (let j = 0; j < parts; j++) pattern += `${'*'.repeat(1 + r(2))}${randomString(r, 'ab?[b]', 3)}`;
      if (r(2) === 0) pattern += '*';
      const key = randomString(r, 'abc', 24);
      const classes = new ClassTable();
      const tokens = compilePattern(pattern, classes, false);
      const ours = tokens !== null && tokensMatch(tokens, key, classes);
      if (ours !== glibcFnmatch(pattern, key)) disagreements.push(`${JSON.stringify(pattern)} vs ${JSON.stringify(key)}: ours=${ours}`);
    }
    expect(disagreements).toEqual([]);
  });
});

/** A dependency chain m0 -> m1 -> ... -> m(n-1), one direct dependency per modules.dep line. */
function chain(n: number): IndexParts {
  let dep = '';
  for (let i = 0; i < n; i++) dep += i + 1 < n ? `kernel/m${i}.ko: kernel/m${i + 1}.ko\n` : `kernel/m${i}.ko:\n`;
  return indexFromDepmod({ dir: '/chain', alias: '', dep });
}

/** loadOrder as it was first written (recursive), the reference for the order. */
function recursiveLoadOrder(index: ModuleIndex, target: string): PlanStep[] {
  const out: PlanStep[] = [];
  const visited = new Set<string>();
  const visit = (name: string, role: StepRole, of: string | undefined): void => {
    if (visited.has(name)) return;
    visited.add(name);
    const m = index.moduleByName(name);
    const deps = m?.deps ?? [];
    for (let i = deps.length - 1; i >= 0; i--) visit(index.modules[deps[i]!]!.name, 'dependency', name);
    const soft = index.softdeps(name);
    for (const pre of soft?.pre ?? []) for (const n of index.lookup(pre).names) visit(n, 'softdep-pre', name);
    const step: PlanStep = { name, path: m ? m.path : null, builtin: index.isBuiltin(name), role };
    if (of !== undefined) step.dependencyOf = of;
    out.push(step);
    for (const post of soft?.post ?? []) for (const n of index.lookup(post).names) visit(n, 'softdep-post', name);
  };
  visit(target, 'target', undefined);
  return out;
}

describe('load order of deep dependency chains', () => {
  it('plans a 100,000-deep dependency chain deepest first without RangeError', () => {
    const n = 100_000;
    const plan = loadOrder(new ModuleIndex(chain(n)), 'm0');
    expect(plan).toHaveLength(n);
    expect(plan[0]).toEqual({ name: `m${n - 1}`, path: `kernel/m${n - 1}.ko`, builtin: false, role: 'dependency', dependencyOf: `m${n - 2}` });
    expect(plan[n - 2]).toMatchObject({ name: 'm1', role: 'dependency', dependencyOf: 'm0' });
    expect(plan[n - 1]).toEqual({ name: 'm0', path: 'kernel/m0.ko', builtin: false, role: 'target' });
    expect(plan.every((s, i) => s.name === `m${n - 1 - i}`)).toBe(true);
  });

  it('orders every module of the Debian index, with softdeps and softdep cycles, as the recursive definition does', () => {
    const cfg = emptyConfig();
    parseModprobeConf(
      [
        'softdep ext4 pre: crc32c post: xfs',
        'softdep xfs pre: ext4 post: libcrc32c btrfs',
        'softdep snd_hda_intel pre: snd_hda_codec_hdmi post: pci:v00008086d0000293Esv*',
        'softdep btrfs pre: missing_module post: ext4',
      ].join('\n'),
      'soft.conf',
      cfg,
    );
    const index = new ModuleIndex(depmodParts(FIXTURE_DIR), cfg);
    const differ: string[] = [];
    for (const m of index.modules) {
      if (JSON.stringify(loadOrder(index, m.name)) !== JSON.stringify(recursiveLoadOrder(index, m.name))) differ.push(m.name);
    }
    expect(index.modules.length).toBeGreaterThan(4000);
    expect(differ).toEqual([]);
  });
});

describe('alias and query length', () => {
  const longStars = '*a'.repeat(10_000); // 20,000 tokens
  const longLiteral = 'x'.repeat(10_240);
  const deep = `${'*b'.repeat(2000)}*`; // 4,001 tokens: allowed, and 4,001 radix nodes deep
  const depText = 'kernel/a.ko:\nkernel/b.ko:\nkernel/c.ko:\n';
  const aliasText = `alias usb:v1234* a\nalias ${longStars} b\nalias ${longLiteral} b\nalias ${deep} c\nalias pci:v5678* b\n`;

  it('skips aliases longer than MAX_ALIAS_BYTES with one warning and keeps the others', () => {
    const parts = indexFromDepmod({ dir: '/long', alias: aliasText, dep: depText });
    const tooLong = parts.warnings.filter((w) => w.problem.includes(`longer than ${MAX_ALIAS_BYTES} bytes`));
    expect(tooLong).toHaveLength(1);
    expect(tooLong[0]).toMatchObject({ file: '/long/modules.alias' });
    expect(tooLong[0]!.problem).toMatch(/^2 alias\(es\)/);
    expect(parts.aliases.count).toBe(3);
    const index = new ModuleIndex(parts);
    expect(index.lookup('usb:v1234p0001').names).toEqual(['a']);
    expect(index.lookup('pci:v5678d1').names).toEqual(['b']);
    expect(index.lookup('b'.repeat(2000)).names).toEqual(['c']);
    expect(index.lookup('b'.repeat(1999)).names).toEqual([]);
    expect(index.lookup(longLiteral).source).toBe('too-long');
  });

  it('writes and reads back meta.pb for an index with over-long and 4,000-token aliases', async () => {
    const parts = indexFromDepmod({ dir: '/long', alias: aliasText, dep: depText });
    const back = new ModuleIndex(decodeMeta(await encodeMeta(parts, 'test'), '/long/meta.pb'));
    expect(back.lookup('b'.repeat(2000)).names).toEqual(['c']);
    expect(back.lookup('usb:v1234p0001').names).toEqual(['a']);
  });

  it('reads a radix-only meta.pb (as Monogon writes it) whose longest alias has 4,095 tokens', async () => {
    const longest = `${'*b'.repeat(2047)}*`;
    expect(longest).toHaveLength(MAX_ALIAS_BYTES);
    const parts = indexFromDepmod({ dir: '/long', alias: `alias ${longest} a\nalias usb:v1234* b\n`, dep: 'kernel/a.ko:\nkernel/b.ko:\n' });
    const Meta = protobuf.loadSync(fileURLToPath(new URL('../../../proto/meta.proto', import.meta.url))).lookupType('hotplugd.meta.Meta');
    const limit = protobuf.Reader.recursionLimit;
    protobuf.Reader.recursionLimit = 10_000;
    let radixOnly: Uint8Array;
    try {
      const msg = Meta.toObject(Meta.decode(await encodeMeta(parts, 'test')));
      delete msg.compiledDeviceMatches;
      delete msg.compiledBuiltinDeviceMatches;
      delete msg.byteClasses;
      delete msg.checksum; // Monogon's files carry none
      delete msg.crc32;
      radixOnly = Meta.encode(Meta.fromObject(msg)).finish();
    } finally {
      protobuf.Reader.recursionLimit = limit;
    }
    const index = new ModuleIndex(decodeMeta(radixOnly, '/long/meta.pb'));
    expect(index.lookup('b'.repeat(2047)).names).toEqual(['a']);
    expect(index.lookup('b'.repeat(2046)).names).toEqual([]);
    expect(index.lookup('usb:v1234p1').names).toEqual(['b']);
  });

  it('builds, matches and lists a 20,000-token pattern without recursion', () => {
    const classes = new ClassTable();
    const entries = [
      { tokens: compilePattern(longStars, classes)!, value: 0 },
      { tokens: compilePattern('ab*', classes)!, value: 1 },
    ];
    const m = Matcher.build(entries, classes);
    expect(m.match('a'.repeat(10_000))).toEqual([0]);
    expect(m.match(`ab${'a'.repeat(9_999)}`)).toEqual([0, 1]);
    expect(m.match('a'.repeat(9_999))).toEqual([]);
    expect(m.match(`ab${'a'.repeat(9_998)}`)).toEqual([1]);
    const listed = m.entries();
    expect(listed.map((e) => e.value).sort()).toEqual([0, 1]);
    expect(listed.find((e) => e.value === 0)!.tokens).toBe(entries[0]!.tokens);
  });

  it('skips a 390 KB modprobe.d alias with a warning (brackets that fnmatch never sees closed made it quadratic to compile)', () => {
    const cfg = emptyConfig();
    parseModprobeConf(`alias ${'[\\]'.repeat(130_000)} pcspkr\nalias usb:v9999* pcspkr\n`, 'long.conf', cfg);
    const index = new ModuleIndex(depmodParts(FIXTURE_DIR), cfg);
    expect(index.warnings.filter((w) => w.problem.includes(`longer than ${MAX_ALIAS_BYTES} bytes`))).toHaveLength(1);
    expect(index.lookup('usb:v9999p1')).toMatchObject({ source: 'config', names: ['pcspkr'] });
  });

  it('answers a 1 MB query on the Debian index with too-long, and a 4,095-byte one as libkmod does', () => {
    const index = new ModuleIndex(depmodParts(FIXTURE_DIR));
    const huge = `pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00${'x'.repeat(1 << 20)}`;
    expect(index.lookup(huge)).toEqual({ normalized: null, source: 'too-long', names: [] });
    const limit = `pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00${'x'.repeat(MAX_ALIAS_BYTES - 53)}`;
    expect(limit).toHaveLength(MAX_ALIAS_BYTES);
    // snd_hda_intel's alias ends in `i*`: libkmod matches this key.
    expect(index.lookup(limit)).toMatchObject({ source: 'alias', names: ['snd_hda_intel'] });
    expect(index.lookup(`${limit}x`).source).toBe('too-long');
  });
});

describe('ELF section lookup', () => {
  it('finds .modinfo among 65,535 section headers that all name one unterminated 1 MB string', () => {
    // Each header's name was read up to its NUL: sections x table size bytes.
    const shnum = 0xffff;
    const junk = 1 << 20;
    const strtab = Buffer.concat([Buffer.alloc(junk, 'x'), Buffer.from('.modinfo\0')]);
    const modinfo = Buffer.from('name=m\0alias=usb:v1234p*\0');
    const empty = Array.from({ length: shnum - 2 }, () => ({ name: 0 }));
    const elf = buildElf(strtab, [...empty, { name: junk, data: modinfo }]);
    expect(readModinfo(elf, 'many-sections.ko')).toEqual({ name: 'm', aliases: ['usb:v1234p*'], depends: [], softdeps: [] });
  });
});
