/**
 * `node dist/bench/queue-jobs.js`: the time the queue takes to drain 60
 * requests on Debian 6.1's index with a fake kernel whose every load takes
 * 20 ms, for --jobs 1, 2, 4 and 8. Two request mixes: 60 PCI modaliases of
 * the corpus that match a module (as a coldplug sees them), and 60 modules by
 * name spread over the index. Also prints the loads made and the shortest
 * possible drain (the longest dependency chain x 20 ms, the bound for any N).
 * Then the same with a kernel whose load is a 20 ms usleep(3) through koffi's
 * async call, as SyscallKernel calls finit_module: those run on libuv's thread
 * pool (UV_THREADPOOL_SIZE, default 4), which caps the loads at once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ModuleIndex } from '../src/core/index/module-index.js';
import { type Kernel, type LoadOutcome, type ModuleState } from '../src/core/kernel.js';
import { libc } from '../src/sys/libc.js';
import { type LoadRequest, LoadQueue } from '../src/core/queue.js';
import { loadIndex } from '../src/sys/indexfs.js';
import { loadOrder } from '../src/core/plan.js';
import { FakeKernel, recordingLog } from '../test/support/fakes.js';

const LOAD_MS = 20;
const FIXTURE_DIR = fileURLToPath(new URL('../../test/fixtures/debian-6.1.0-56-amd64', import.meta.url));

/** Each load is usleep(LOAD_MS) on a koffi worker (libuv's pool), as finit_module runs. */
class UsleepKernel implements Kernel {
  readonly kind = 'usleep';
  readonly loads = true;
  readonly calls: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly live = new Map<string, ModuleState>();
  private readonly usleep = libc().func('int usleep(unsigned int)') as unknown as { async: (us: number, cb: (err: unknown) => void) => void };
  loadedModules(): Map<string, ModuleState> {
    return new Map(this.live);
  }
  moduleState(name: string): ModuleState | undefined {
    return this.live.get(name);
  }
  async load(req: { name: string }): Promise<LoadOutcome> {
    this.calls.push(req.name);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    await new Promise<void>((resolve, reject) => this.usleep.async(LOAD_MS * 1000, (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));
    this.inFlight--;
    this.live.set(req.name, 'live');
    return { ok: true };
  }
}

async function drain(index: ModuleIndex, requests: LoadRequest[], jobs: number, koffi: boolean): Promise<{ ms: number; loads: number; maxInFlight: number }> {
  const kernel = koffi ? new UsleepKernel() : new FakeKernel({}, new Map(), LOAD_MS);
  const queue = new LoadQueue({ index, kernel, log: recordingLog('error').log, modulesDir: '/lib/modules/x', jobs });
  const t0 = performance.now();
  for (const r of requests) queue.submit(r);
  await queue.idle();
  return { ms: performance.now() - t0, loads: kernel.calls.length, maxInFlight: kernel.maxInFlight };
}

/** The longest chain of modules.dep dependencies among the modules the requests load, in loads. */
function longestChain(index: ModuleIndex, targets: string[]): number {
  const depth = new Map<string, number>();
  const of = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    let d = 0;
    for (const i of index.moduleByName(name)?.deps ?? []) d = Math.max(d, of(index.modules[i]!.name));
    depth.set(name, d + 1);
    return d + 1;
  };
  return Math.max(...targets.flatMap((t) => loadOrder(index, t).map((s) => of(s.name))));
}

const index = loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [], cmdline: '' });
const pci: string[] = [];
const seen = new Set<string>();
for (const m of readFileSync(`${FIXTURE_DIR}/corpus.txt`, 'latin1').split('\n')) {
  if (pci.length === 60 || !m.startsWith('pci:')) continue;
  const names = index.lookup(m).names;
  if (names.length === 0 || names.some((n) => seen.has(n))) continue;
  names.forEach((n) => seen.add(n));
  pci.push(m);
}
const loadable = index.modules.filter((m) => !m.builtin).map((m) => m.name);
const byName = loadable.filter((_, i) => i % Math.floor(loadable.length / 60) === 0).slice(0, 60);
const mixes: [string, LoadRequest[], string[]][] = [
  ['60 PCI modaliases', pci.map((modalias) => ({ modalias, origin: 'coldplug' })), pci.flatMap((m) => index.lookup(m).names)],
  ['60 modules by name', byName.map((module) => ({ module, origin: 'request' })), byName],
];
for (const koffi of [false, true]) {
  console.log(koffi ? `koffi usleep ${LOAD_MS} ms on libuv's pool (UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'unset: 4'}):` : `fake kernel, ${LOAD_MS} ms timers:`);
  for (const [label, requests, targets] of mixes) {
    const chain = longestChain(index, targets);
    let base = 0;
    for (const jobs of [1, 2, 4, 8]) {
      const r = await drain(index, requests, jobs, koffi);
      if (jobs === 1) base = r.ms;
      console.log(`  ${label}: --jobs ${jobs}: ${r.ms.toFixed(0)} ms (${(base / r.ms).toFixed(2)}x), ${r.loads} loads, at most ${r.maxInFlight} at once; bound ${chain * LOAD_MS} ms`);
    }
  }
}
