/**
 * --jobs N: the queue dispatches up to N loads at once, each only after all it
 * depends on has finished. Checked on hand-made cases, on random dependency
 * graphs and request sequences (fast-check, a fake kernel with random delays)
 * and on Debian 6.1's real modules.dep, for N in {1, 2, 4, 8}, against the
 * N = 1 run's records.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { indexFromDepmod } from '../../../src/core/index/from-depmod.js';
import { emptyConfig, parseModprobeConf } from '../../../src/core/config.js';
import { ModuleIndex } from '../../../src/core/index/module-index.js';
import { type LoadOutcome, type LoadRequestForKernel, type ModuleState } from '../../../src/core/kernel.js';
import { type LoadRequest, LOAD_TIMEOUT_MSG, LoadQueue, type QueuePolicy } from '../../../src/core/queue.js';
import { loadIndex } from '../../../src/sys/indexfs.js';
import { FakeKernel, FakeRunner, recordingLog } from '../../support/fakes.js';
import { chainIndex } from '../../support/chain-index.js';
import { FIXTURE_DIR, fixtureLines } from '../../support/helpers.js';

const JOBS = [1, 2, 4, 8] as const;

type Rec = Record<string, unknown>;

interface Run {
  kernel: FakeKernel;
  records: Rec[];
  queue: LoadQueue;
}

async function runQueue(index: ModuleIndex, kernel: FakeKernel, requests: LoadRequest[], policy: QueuePolicy = {}): Promise<Run> {
  const rec = recordingLog();
  const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/lib/modules/test', retryDelayMs: 1, ...policy });
  for (const r of requests) queue.submit(r);
  await queue.idle();
  return { kernel, records: rec.records().filter((r) => r.msg === 'module'), queue };
}

const byName = (name: string): LoadRequest => ({ module: name, origin: 'request' });

/** A module's modules.dep closure, and the modules its `pre:` softdeps name (as the queue looks them up). */
function hardDeps(index: ModuleIndex, name: string): string[] {
  return (index.moduleByName(name)?.deps ?? []).map((d) => index.modules[d]!.name);
}
function preSoftdeps(index: ModuleIndex, name: string): string[] {
  return (index.softdeps(name)?.pre ?? []).flatMap((p) => index.lookup(p).names);
}
function postSoftdeps(index: ModuleIndex, name: string): string[] {
  return (index.softdeps(name)?.post ?? []).flatMap((p) => index.lookup(p).names);
}

/**
 * The invariants of one run, from the fake kernel's start/end events and the
 * records: every start comes after each hard dependency ended loaded (or was
 * live from the start) and after each `pre:` softdep finished; one module is
 * never loaded twice at once, nor again once loaded; at most `jobs` loads at
 * once; a skip for a failed dependency names a failed module of its closure;
 * dependencyOf/role name a module that needs this one.
 */
function checkInvariants(index: ModuleIndex, run: Run, jobs: number, live: Set<string>): void {
  const { kernel, records } = run;
  expect(kernel.maxInFlight).toBeLessThanOrEqual(jobs);
  const events = kernel.events;
  const history = new Map<string, number[]>();
  events.forEach((e, i) => {
    const h = history.get(e.name) ?? [];
    h.push(i);
    history.set(e.name, h);
  });
  const lastBefore = (name: string, i: number) => {
    const h = history.get(name) ?? [];
    let last: number | undefined;
    for (const j of h) if (j < i) last = j;
    return last === undefined ? undefined : events[last];
  };
  events.forEach((e, i) => {
    if (e.at !== 'start') return;
    for (const d of hardDeps(index, e.name)) {
      if (live.has(d)) continue;
      const last = lastBefore(d, i);
      expect({ module: e.name, dependency: d, last }).toEqual({ module: e.name, dependency: d, last: { name: d, at: 'end', outcome: expect.stringMatching(/^(ok|EEXIST)$/) } });
    }
    for (const p of preSoftdeps(index, e.name)) {
      const h = history.get(p) ?? [];
      if (h.length === 0) continue;
      // It was started (first) before, and is not running now.
      expect({ module: e.name, pre: p, first: h[0]! < i }).toEqual({ module: e.name, pre: p, first: true });
      expect({ module: e.name, pre: p, last: lastBefore(p, i)?.at }).toEqual({ module: e.name, pre: p, last: 'end' });
    }
  });
  for (const [name, h] of history) {
    // Start and end alternate (never two loads of one module at once), and nothing starts after an "ok".
    const seq = h.map((i) => events[i]!);
    seq.forEach((e, k) => expect({ name, k, at: e.at }).toEqual({ name, k, at: k % 2 === 0 ? 'start' : 'end' }));
    const ok = seq.findIndex((e) => e.at === 'end' && e.outcome === 'ok');
    if (ok >= 0) expect({ name, startsAfterOk: seq.slice(ok + 1).length }).toEqual({ name, startsAfterOk: 0 });
  }
  const failed = new Set(records.filter((r) => r.result === 'failed').map((r) => r.module as string));
  for (const r of records) {
    if (r.reason === 'dependency-failed') {
      const dep = r.failedDependency as string;
      expect(hardDeps(index, r.module as string)).toContain(dep);
      expect(failed).toContain(dep);
    }
    if (r.dependencyOf !== undefined) {
      const of = r.dependencyOf as string;
      const why = { dependency: hardDeps, 'softdep-pre': preSoftdeps, 'softdep-post': postSoftdeps }[r.role as 'dependency'](index, of);
      expect(why).toContain(r.module);
    }
  }
}

/** What a run decided per module, order aside (the fields that depend on which request got there first left out). */
function decisions(records: Rec[]): string[] {
  return records.map((r) => [r.module, r.result, r.reason ?? '', r.code ?? '', r.attempt ?? ''].join(' ')).sort();
}

/**
 * A kernel whose loads take a delay chosen per module name (0 = one
 * microtask), some modules live from the start; EEXIST leaves the module live,
 * as the real kernel has it then.
 */
function kernelFor(script: Record<string, string | string[]>, live: Set<string>, delay: (name: string) => number): FakeKernel {
  const state = new Map<string, ModuleState>([...live].map((n) => [n, 'live' as const]));
  return new (class extends FakeKernel {
    override async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
      const o = await super.load(req);
      if (!o.ok && o.code === 'EEXIST') state.set(req.name, 'live');
      return o;
    }
  })(script, state, delay);
}

/** A small stable hash of a module name, for delays and failures on the real index. */
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** d <- c, b <- a; e and f independent; (modules.dep closure lines, as depmod writes them). */
function smallIndex(): ModuleIndex {
  const dep = 'a.ko:\nb.ko: a.ko\nc.ko:\nd.ko: c.ko\ne.ko:\nf.ko:\n';
  return new ModuleIndex(indexFromDepmod({ dir: '/x', alias: 'alias dev:b b\nalias dev:d d\n', dep }));
}

describe('--jobs on hand-made cases', () => {
  it('loads independent modules at once, up to N, and a dependent only after its dependency answered', async () => {
    const kernel = new FakeKernel({ a: 'hang', c: 'hang', e: 'hang', f: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index: smallIndex(), kernel, log: rec.log, modulesDir: '/m', jobs: 3 });
    for (const m of ['b', 'd', 'e', 'f']) queue.submit(byName(m));
    await new Promise((r) => setTimeout(r, 10));
    // b and d wait for a and c; f waits for one of the 3 requests served to end.
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e']);
    expect(kernel.maxInFlight).toBe(3);
    kernel.release('a');
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e', 'b', 'f']); // b got a's slot; its request done, f's starts
    kernel.release('c');
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e', 'b', 'f', 'd']);
    kernel.release('e');
    kernel.release('f');
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e', 'b', 'f', 'd']);
    expect(kernel.maxInFlight).toBe(3);
    const records = rec.records().filter((r) => r.msg === 'module');
    expect(records.filter((r) => r.result === 'loaded')).toHaveLength(6);
    expect(records.find((r) => r.module === 'a')).toMatchObject({ dependencyOf: 'b', role: 'dependency' });
  });

  for (const jobs of [0, -3, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`serves requests with a jobs option of ${jobs}, as one job`, async () => {
      const run = await runQueue(smallIndex(), new FakeKernel(), [byName('b'), byName('d')], { jobs });
      expect(run.kernel.calls.map((c) => c.name)).toEqual(['a', 'b', 'c', 'd']);
      expect(run.kernel.maxInFlight).toBe(1);
    });
  }

  it('keeps at most N loads in flight when one plan has more independent steps', async () => {
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: '', dep: 'a.ko:\nc.ko:\ne.ko:\nh.ko: e.ko c.ko a.ko\n' }));
    const kernel = new FakeKernel({ a: 'hang', c: 'hang', e: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/m', jobs: 2 });
    queue.submit(byName('h'));
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c']);
    kernel.release('c');
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e']);
    kernel.release('a');
    kernel.release('e');
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c', 'e', 'h']);
    expect(kernel.maxInFlight).toBe(2);
  });

  it('loads a module two requests need once: the second waits for it, then goes on', async () => {
    const dep = 'x.ko:\ny.ko: x.ko\nz.ko: x.ko\n';
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: '', dep }));
    const kernel = new FakeKernel({ x: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/m', jobs: 4 });
    queue.submit(byName('y'));
    queue.submit(byName('z'));
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['x']);
    kernel.release('x');
    await queue.idle();
    expect(kernel.calls.map((c) => c.name).sort()).toEqual(['x', 'y', 'z']);
    expect(rec.records().filter((r) => r.module === 'x')).toEqual([expect.objectContaining({ result: 'loaded', dependencyOf: 'y' })]);
  });

  it('gives the second request a failed-before record when the load it waited for failed, and skips its dependents', async () => {
    const dep = 'x.ko:\ny.ko: x.ko\nz.ko: x.ko\n';
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: '', dep }));
    const kernel = new FakeKernel({ x: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/m', jobs: 2 });
    queue.submit(byName('y'));
    queue.submit(byName('z'));
    await new Promise((r) => setTimeout(r, 10));
    kernel.release('x', 'ENOEXEC');
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['x']);
    const records = rec.records().filter((r) => r.msg === 'module');
    expect(records[0]).toMatchObject({ module: 'x', result: 'failed', code: 'ENOEXEC', dependencyOf: 'y' });
    expect(records.slice(1).map((r) => [r.module, r.result, r.reason, r.failedDependency ?? r.code]).sort()).toEqual([
      ['x', 'skipped', 'failed-before', 'ENOEXEC'],
      ['y', 'skipped', 'dependency-failed', 'x'],
      ['z', 'skipped', 'dependency-failed', 'x'],
    ]);
  });

  it('waits for a pre softdep and loads a post softdep after its module', async () => {
    const dep = 'p.ko:\nm.ko:\nq.ko:\n';
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: '', dep, softdep: 'softdep m pre: p post: q\n' }));
    const kernel = new FakeKernel({ p: 'hang', m: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/m', jobs: 8 });
    queue.submit(byName('m'));
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['p']);
    kernel.release('p', 'ENOEXEC'); // a failed softdep does not stop the module
    await new Promise((r) => setTimeout(r, 10));
    expect(kernel.calls.map((c) => c.name)).toEqual(['p', 'm']);
    kernel.release('m');
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['p', 'm', 'q']);
    expect(rec.records().find((r) => r.module === 'q')).toMatchObject({ result: 'loaded', dependencyOf: 'm', role: 'softdep-post' });
  });

  it('frees the slot of a load left behind by the load timeout, and never loads that module twice', async () => {
    const kernel = new FakeKernel({ a: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index: smallIndex(), kernel, log: rec.log, modulesDir: '/m', jobs: 2, loadTimeoutMs: 20 });
    queue.submit(byName('b'));
    queue.submit(byName('e'));
    await queue.idle();
    expect(rec.records().filter((r) => r.msg === LOAD_TIMEOUT_MSG).map((r) => r.module)).toEqual(['a']);
    queue.submit(byName('a'));
    queue.submit(byName('f'));
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'e', 'f']);
    expect(queue.stuck).toBe(1);
    expect(rec.records().find((r) => r.reason === 'in-flight')).toMatchObject({ module: 'a', result: 'skipped' });
    kernel.release('a');
    await new Promise((r) => setTimeout(r, 10));
    expect(queue.stuck).toBe(0);
    expect(rec.records().filter((r) => r.module === 'a' && r.result === 'loaded')).toHaveLength(1);
  });

  it('stops: the loads in flight finish and are recorded, nothing new starts, queued requests are dropped', async () => {
    const kernel = new FakeKernel({ a: 'hang', c: 'hang' });
    const rec = recordingLog();
    const queue = new LoadQueue({ index: smallIndex(), kernel, log: rec.log, modulesDir: '/m', jobs: 2 });
    for (const m of ['b', 'd', 'e', 'f']) queue.submit(byName(m));
    await new Promise((r) => setTimeout(r, 10));
    const stopped = queue.stop();
    kernel.release('a');
    kernel.release('c');
    expect(await stopped).toBe(2); // e and f were still queued
    expect(queue.busy).toBe(false);
    expect(kernel.calls.map((c) => c.name)).toEqual(['a', 'c']);
    expect(rec.records().filter((r) => r.msg === 'module').map((r) => [r.module, r.result])).toEqual([
      ['a', 'loaded'],
      ['c', 'loaded'],
    ]);
  });

  it('runs install commands within the N slots, each once, with the same records as one job', async () => {
    const dep = 'a.ko:\nb.ko: a.ko\nc.ko: a.ko\n';
    const conf = 'install a /bin/true\ninstall c /bin/false\n';
    const config = emptyConfig();
    parseModprobeConf(conf, 'test.conf', config);
    const index = new ModuleIndex(indexFromDepmod({ dir: '/x', alias: '', dep }), config);
    const runs: string[][] = [];
    for (const jobs of JOBS) {
      const runner = new FakeRunner({ c: 1 });
      const run = await runQueue(index, new FakeKernel(), [byName('b'), byName('c'), byName('b')], { jobs, runner });
      expect(runner.runs.map((r) => r.module).sort()).toEqual(['a', 'c']);
      runs.push(decisions(run.records));
    }
    for (const r of runs) expect(r).toEqual(runs[0]);
  });
});

describe('--jobs on a 3,000-deep chain (4.5 million dependency entries)', () => {
  it('loads it bottom up with a bounded heap: a waiting step holds no list of what it waits for', async () => {
    const index = chainIndex(3000);
    const heap = () => process.memoryUsage().heapUsed;
    const before = heap();
    let peak = before;
    const kernel = new (class extends FakeKernel {
      override async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
        if (this.calls.length % 50 === 0) peak = Math.max(peak, heap());
        return super.load(req);
      }
    })();
    const run = await runQueue(index, kernel, [{ modalias: 'dev:top', origin: 'uevent' }], { jobs: 4 });
    expect(kernel.calls.map((c) => c.name)).toEqual(Array.from({ length: 3000 }, (_, i) => `m${i}`));
    expect(run.records.filter((r) => r.result === 'loaded')).toHaveLength(3000);
    // Waiting on every entry at once took over 500 MB here; one wait per step takes a few.
    expect(peak - before).toBeLessThan(150 * 2 ** 20);
  });

  it('skips all 2,999 modules above a failed bottom, naming it, as one job does', async () => {
    const run = await runQueue(chainIndex(3000), new FakeKernel({ m0: 'ENOEXEC' }), [{ modalias: 'dev:top', origin: 'uevent' }], { jobs: 8 });
    const skipped = run.records.filter((r) => r.result === 'skipped');
    expect(skipped).toHaveLength(2999);
    expect(skipped.every((r) => r.failedDependency === 'm0')).toBe(true);
    expect(run.kernel.calls).toHaveLength(1);
  });
});

/**
 * A random DAG of modules m0..m{n-1}: deps and `pre:` softdeps point to lower
 * numbers; `post:` softdeps to any module without dependencies or `pre:`
 * softdeps. (A post softdep on a module that depends on the one being planned
 * is a cycle: modprobe, and the queue with any N, then load a module before
 * its dependency.)
 */
const graphArb = fc.integer({ min: 2, max: 12 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    deps: fc.array(fc.array(fc.boolean(), { minLength: n, maxLength: n }), { minLength: n, maxLength: n }),
    pre: fc.array(fc.integer({ min: -1, max: n - 1 }), { minLength: n, maxLength: n }),
    post: fc.array(fc.integer({ min: -1, max: n - 1 }), { minLength: n, maxLength: n }),
    fate: fc.array(fc.constantFrom('ok', 'ok', 'ok', 'ok', 'ENOEXEC', 'EEXIST', 'retry', 'live'), { minLength: n, maxLength: n }),
    delay: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
    requests: fc.array(fc.record({ m: fc.integer({ min: 0, max: n - 1 }), alias: fc.boolean() }), { minLength: 1, maxLength: 14 }),
  }),
);

type Graph = typeof graphArb extends fc.Arbitrary<infer T> ? T : never;

function graphIndex(g: Graph): ModuleIndex {
  const closure: Set<number>[] = [];
  for (let i = 0; i < g.n; i++) {
    const c = new Set<number>();
    for (let j = i - 1; j >= 0; j--) if (g.deps[i]![j]) for (const k of [j, ...closure[j]!]) c.add(k);
    closure.push(c);
  }
  const pre = g.pre.map((p, i) => (p >= 0 && p < i && !closure[i]!.has(p) ? p : -1));
  const leaf = (j: number) => closure[j]!.size === 0 && pre[j] === -1;
  let dep = '';
  let alias = '';
  let softdep = '';
  for (let i = 0; i < g.n; i++) {
    dep += `m${i}.ko:${[...closure[i]!].sort((x, y) => y - x).map((k) => ` m${k}.ko`).join('')}\n`;
    alias += `alias dev:m${i} m${i}\n`;
    const post = g.post[i]!;
    const soft = `${pre[i]! >= 0 ? ` pre: m${pre[i]}` : ''}${post >= 0 && post !== i && leaf(post) ? ` post: m${post}` : ''}`;
    if (soft !== '') softdep += `softdep m${i}${soft}\n`;
  }
  return new ModuleIndex(indexFromDepmod({ dir: '/x', alias, dep, softdep }));
}

describe('--jobs on random dependency graphs', () => {
  it('keeps every invariant and the N = 1 decisions for N in {1, 2, 4, 8}', async () => {
    let parallel = 0;
    await fc.assert(
      fc.asyncProperty(graphArb, async (g) => {
        const index = graphIndex(g);
        const script: Record<string, string | string[]> = {};
        const live = new Set<string>();
        g.fate.forEach((f, i) => {
          if (f === 'live') live.add(`m${i}`);
          else if (f === 'retry') script[`m${i}`] = ['EAGAIN', 'ok'];
          else script[`m${i}`] = f;
        });
        const requests = g.requests.map((r): LoadRequest => (r.alias ? { modalias: `dev:m${r.m}`, origin: 'uevent' } : byName(`m${r.m}`)));
        let reference: string[] | undefined;
        for (const jobs of JOBS) {
          const run = await runQueue(index, kernelFor(script, live, (name) => g.delay[Number(name.slice(1))]!), requests, { jobs });
          checkInvariants(index, run, jobs, live);
          if (run.kernel.maxInFlight > 1) parallel++;
          reference ??= decisions(run.records);
          expect(decisions(run.records)).toEqual(reference);
        }
      }),
      { numRuns: 60 },
    );
    expect(parallel).toBeGreaterThan(0); // the property did exercise loads at once
  });
});

describe('--jobs on Debian 6.1 modules.dep', () => {
  const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
  const script = (names: string[]): Record<string, string> => Object.fromEntries(names.filter((n) => hash(n) % 29 === 0).map((n) => [n, 'ENOEXEC']));
  const delay = (name: string) => hash(name) % 3; // 0 (a microtask), 1 or 2 ms
  const quick = (name: string) => (hash(name) % 4 === 0 ? 1 : 0);

  it('loads 300 modules by name with every invariant, and the same decisions as one job', async () => {
    const loadable = index.modules.filter((m) => !m.builtin).map((m) => m.name);
    const names = loadable.filter((_, i) => i % Math.floor(loadable.length / 300) === 0).slice(0, 300);
    let reference: string[] | undefined;
    for (const jobs of JOBS) {
      const run = await runQueue(index, kernelFor(script(loadable), new Set(), delay), names.map(byName), { jobs });
      checkInvariants(index, run, jobs, new Set());
      if (jobs > 1) expect(run.kernel.maxInFlight).toBeGreaterThan(1);
      reference ??= decisions(run.records);
      expect(decisions(run.records)).toEqual(reference);
    }
    expect(reference!.length).toBeGreaterThan(300);
  });

  // 33,754 requests; 1,216 modules loaded, 1 in 29 of them failing.

  it('serves every PCI and USB modalias of the corpus with every invariant, and the same decisions as one job', async () => {
    const corpus = fixtureLines('corpus.txt').filter((l) => l.startsWith('pci:') || l.startsWith('usb:'));
    const loadable = index.modules.filter((m) => !m.builtin).map((m) => m.name);
    const requests = corpus.map((modalias): LoadRequest => ({ modalias, origin: 'coldplug' }));
    let reference: string[] | undefined;
    for (const jobs of JOBS) {
      const run = await runQueue(index, kernelFor(script(loadable), new Set(), quick), requests, { jobs });
      checkInvariants(index, run, jobs, new Set());
      if (jobs > 1) expect(run.kernel.maxInFlight).toBeGreaterThan(1);
      reference ??= decisions(run.records);
      expect(decisions(run.records)).toEqual(reference);
      expect(run.queue.counts.requests).toBe(corpus.length);
    }
  });
});
