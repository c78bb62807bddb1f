/**
 * `npm run bench`: the matcher and index against libkmod, measured in the
 * same run on the same Debian module directory and query corpus.
 *
 * Prints: ns per lookup (hotplugd vs libkmod's kmod_module_new_from_lookup,
 * through test/conformance/kmod-lookup.c), index build time from depmod text,
 * from meta.pb and from the index cache (fresh process each, first load =
 * what the daemon pays, median of 5), process start -> index ready from the
 * cache as a whole process (bench/index-ready.ts) and `hotplugd match` from
 * the cache as a whole process, on this Node and on the Node the package
 * carries (packaging/runtime.json, fetched as scripts/package.mjs fetches it),
 * `match --stdin` over the whole corpus as a whole process against the
 * libkmod harness answering the same queries as a whole process, and the
 * memory the index holds (heap + typed arrays). Index loads also print their
 * CPU time (user + system, all threads), less sensitive than wall time to
 * other work on the machine.
 *
 * Needs: gcc and libkmod-dev, and scripts/fetch-kernel.sh (Debian registry)
 * for a module directory with libkmod's binary indexes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ModuleIndex } from '../src/core/index/module-index.js';
import { encodeMeta } from '../src/core/index/meta/write.js';
import { depmodParts, loadIndex, loadIndexWithCache } from '../src/sys/indexfs.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, '.cache');
const FIXTURE = join(ROOT, 'test/fixtures/debian-6.1.0-56-amd64');

function moduleDir(): string {
  const root = execFileSync(join(ROOT, 'scripts/fetch-kernel.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dirs = execFileSync('ls', [join(root, 'lib/modules')], { encoding: 'utf8' }).trim().split('\n');
  return join(root, 'lib/modules', dirs[0]!);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function fmt(n: number, digits = 1): string {
  return n.toFixed(digits);
}

/** Child-process measurements: a fresh V8 for every first-load figure. */
async function child(mode: string, dir: string, meta: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (mode === 'load-depmod' || mode === 'load-meta' || mode === 'load-cache') {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const cacheDir = mode === 'load-cache' ? meta : undefined;
    const index = loadIndexWithCache({ modulesDir: dir, meta: mode === 'load-meta' ? meta : undefined, cacheDir, configDirs: [], cmdline: '' }).index;
    if (mode === 'load-cache' && index.kind !== 'cache') throw new Error(`expected the cache, got ${index.kind}`);
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, modules: index.modules.length }));
    return;
  }
  if (mode === 'memory') {
    // Full collections with turns of the event loop between, so that freed
    // ArrayBuffers are released before memory is read.
    const settle = async (): Promise<NodeJS.MemoryUsage> => {
      for (let i = 0; i < 4; i++) {
        gc?.();
        await new Promise((r) => setTimeout(r, 20));
      }
      return process.memoryUsage();
    };
    const before = await settle();
    const index = loadIndex({ modulesDir: dir, configDirs: [], cmdline: '' });
    const loaded = await settle();
    for (const q of readFileSync(join(FIXTURE, 'corpus.txt'), 'latin1').split('\n')) index.lookup(q);
    const after = await settle();
    const mb = (m: NodeJS.MemoryUsage, b: NodeJS.MemoryUsage): number => (m.heapUsed + m.arrayBuffers - b.heapUsed - b.arrayBuffers) / 1048576;
    process.stdout.write(JSON.stringify({ loaded: mb(loaded, before), afterCorpus: mb(after, before), dfa: index.matcherStats() }));
  }
}

function runChild(mode: string, dir: string, meta: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', mode, dir, meta], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/**
 * The Node the package carries (packaging/runtime.json), from .cache as
 * scripts/package.mjs leaves it (fetched with `npm pack` when missing, its
 * integrity checked), unpacked into .cache/node-VERSION. Undefined when it
 * cannot be had (offline): the row is then left out.
 */
function packagedNode(): { path: string; version: string } | undefined {
  const rt = JSON.parse(readFileSync(join(ROOT, 'packaging/runtime.json'), 'utf8')) as { package: string; version: string; integrity: string };
  const bin = join(CACHE, `node-${rt.version}`, 'package/bin/node');
  if (existsSync(bin)) return { path: bin, version: rt.version };
  const tgz = join(CACHE, `${rt.package}-${rt.version}.tgz`);
  try {
    if (!existsSync(tgz)) execFileSync('npm', ['pack', `${rt.package}@${rt.version}`, '--pack-destination', CACHE, '--loglevel=error'], { stdio: 'ignore' });
    const digest = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (digest !== rt.integrity) throw new Error(`${tgz}: integrity mismatch`);
    mkdirSync(join(CACHE, `node-${rt.version}`), { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', join(CACHE, `node-${rt.version}`), 'package/bin/node']);
    return { path: bin, version: rt.version };
  } catch (e) {
    console.log(`(no Node ${rt.version} for the start-up rows: ${(e as Error).message})`);
    return undefined;
  }
}

/** Median of 5 whole processes: `ready` and `readyCpu` = what index-ready.js prints, `wall` = spawn to exit. */
function wholeProcess(node: string, args: string[]): { ready: number | undefined; readyCpu: number | undefined; wall: number } {
  const ready: number[] = [];
  const readyCpu: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const r = spawnSync(node, args, { encoding: 'utf8' });
    wall.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`${node} ${args.join(' ')} failed: ${r.stderr}`);
    if (args[0]!.endsWith('index-ready.js')) {
      const out = JSON.parse(r.stdout) as { ms: number; cpuMs: number; kind: string };
      if (out.kind !== 'cache') throw new Error(`index-ready read ${out.kind}, not the cache`);
      ready.push(out.ms);
      readyCpu.push(out.cpuMs);
    }
  }
  return { ready: ready.length > 0 ? median(ready) : undefined, readyCpu: readyCpu.length > 0 ? median(readyCpu) : undefined, wall: median(wall) };
}

/** Median of 3 whole processes fed `input` on stdin: spawn to exit, ms. */
function wallWithInput(cmd: string, args: string[], input: string): number {
  const wall: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { input, encoding: 'latin1', maxBuffer: 1 << 28 });
    wall.push(performance.now() - t0);
    if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return median(wall);
}

function timeLookups(index: ModuleIndex, queries: string[], passes: number): number {
  for (const q of queries) index.lookup(q); // warm: JIT and DFA cache
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let p = 0; p < passes; p++) for (const q of queries) sink += index.lookup(q).names.length;
  const ns = Number(process.hrtime.bigint() - t0);
  if (sink < 0) console.log(sink);
  return ns / (passes * queries.length);
}

function libkmodLookup(harness: string, dir: string, queries: string[], passes: number): number {
  const out = execFileSync(harness, ['--bench', String(passes), dir], { input: queries.join('\n') + '\n', encoding: 'utf8' });
  const m = /ns_per_lookup ([\d.]+)/.exec(out);
  if (!m) throw new Error(`unexpected harness output: ${out}`);
  return Number(m[1]);
}

/** Distinct modaliases of this machine's /sys: the realistic hot set. */
function machineModaliases(): string[] {
  try {
    const out = execFileSync('sh', ['-c', "find /sys/devices -name modalias -type f 2>/dev/null | xargs cat 2>/dev/null | sort -u"], {
      encoding: 'latin1',
      maxBuffer: 1 << 26,
    });
    return out.split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
    return;
  }
  mkdirSync(CACHE, { recursive: true });
  const dir = moduleDir();
  const harness = join(CACHE, 'kmod-lookup');
  execFileSync('gcc', ['-O2', '-o', harness, join(ROOT, 'test/conformance/kmod-lookup.c'), '-lkmod']);
  const metaFile = join(CACHE, 'bench-meta.pb');
  const parts = depmodParts(dir);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(metaFile, await encodeMeta(parts));

  const corpus = readFileSync(join(FIXTURE, 'corpus.txt'), 'latin1').split('\n').filter((q) => q.length < 1000);
  const hot = machineModaliases();
  const index = loadIndex({ modulesDir: dir, configDirs: [], cmdline: '' });

  console.log(`module directory: ${dir} (${index.stats().aliases} aliases)`);
  console.log(`corpus: ${corpus.length} queries (test/fixtures); hot set: ${hot.length} distinct modaliases of this machine's /sys\n`);

  const rows: [string, string, string, string][] = [];
  const oursCorpus = timeLookups(index, corpus, 5);
  const kmodCorpus = libkmodLookup(harness, dir, corpus, 5);
  rows.push(['lookup, corpus (ns)', fmt(oursCorpus), fmt(kmodCorpus), `${fmt(oursCorpus / kmodCorpus, 3)}x (target <= 0.1x)`]);
  if (hot.length > 0) {
    const passes = Math.max(5, Math.ceil(200000 / hot.length));
    const oursHot = timeLookups(index, hot, passes);
    const kmodHot = libkmodLookup(harness, dir, hot, passes);
    rows.push(['lookup, machine set (ns)', fmt(oursHot), fmt(kmodHot), `${fmt(oursHot / kmodHot, 3)}x`]);
  }
  const loads = (mode: string, arg = metaFile): { ms: number; cpuMs: number } => {
    const runs = Array.from({ length: 5 }, () => runChild(mode, dir, arg) as { ms: number; cpuMs: number });
    return { ms: median(runs.map((r) => r.ms)), cpuMs: median(runs.map((r) => r.cpuMs)) };
  };
  const depmodMs = loads('load-depmod').ms;
  const meta = loads('load-meta');
  // The index cache, written as the daemon writes it after a load from depmod text.
  const cacheDir = join(CACHE, 'index-cache');
  rmSync(cacheDir, { recursive: true, force: true });
  const first = loadIndexWithCache({ modulesDir: dir, cacheDir, configDirs: [], cmdline: '' }, { write: true });
  const written = await first.cache!.write!();
  if (!written.written) throw new Error(`cannot write the index cache: ${written.problem}`);
  const cache = loads('load-cache', cacheDir);
  rows.push(['index ready from depmod text (ms)', fmt(depmodMs), '-', 'target < 100 ms']);
  rows.push(['index ready from meta.pb (ms)', fmt(meta.ms), '-', 'target < 50 ms']);
  rows.push(['  its CPU time (ms, all threads)', fmt(meta.cpuMs), '-', '-']);
  rows.push([`index ready from the cache (ms; ${(written.bytes / 1048576).toFixed(1)} MB file)`, fmt(cache.ms), '-', 'target < 50 ms']);
  rows.push(['  its CPU time (ms, all threads)', fmt(cache.cpuMs), '-', '-']);
  const ready = join(ROOT, 'dist/bench/index-ready.js');
  const cli = join(ROOT, 'dist/src/cli.js');
  const matchArgs = [cli, 'match', '--modules-dir', dir, '--cache-dir', cacheDir, '--config-dir', '', '--cmdline', '', 'virtio:d00000001v00001AF4'];
  const node24 = packagedNode();
  for (const [label, node] of [[`Node ${process.versions.node}`, process.execPath], ...(node24 ? [[`Node ${node24.version}`, node24.path]] : [])] as [string, string][]) {
    const r = wholeProcess(node, [ready, dir, cacheDir]);
    rows.push([`process start -> index ready, cache, ${label} (ms)`, fmt(r.ready!), '-', 'target <= 60 ms']);
    rows.push(['  CPU time to index ready (ms, all threads)', fmt(r.readyCpu!), '-', '-']);
    rows.push([`hotplugd match, cache, whole process, ${label} (ms)`, fmt(wholeProcess(node, matchArgs).wall), '-', '-']);
  }
  // The whole corpus as whole processes: hotplugd match --stdin (index from the
  // cache) against the libkmod harness printing the same answers.
  const input = corpus.join('\n') + '\n';
  const kmodWhole = wallWithInput(harness, [dir], input);
  for (const [label, node] of [[`Node ${process.versions.node}`, process.execPath], ...(node24 ? [[`Node ${node24.version}`, node24.path]] : [])] as [string, string][]) {
    const ours = wallWithInput(node, [cli, 'match', '--stdin', '--modules-dir', dir, '--cache-dir', cacheDir, '--config-dir', '', '--cmdline', ''], input);
    rows.push([`match --stdin, corpus, whole process, ${label} (ms)`, fmt(ours), fmt(kmodWhole), `${fmt(ours / kmodWhole, 3)}x (target <= 0.3x)`]);
  }
  const mem = runChild('memory', dir, metaFile) as { loaded: number; afterCorpus: number; dfa: { dfaStates: number; dfaFlushes: number } };
  rows.push(['index memory, loaded (MB)', fmt(mem.loaded), '-', 'target < 30 MB']);
  rows.push([`index memory after corpus (MB, ${mem.dfa.dfaStates} DFA states, ${mem.dfa.dfaFlushes} flushes)`, fmt(mem.afterCorpus), '-', 'target < 30 MB']);

  const w = [Math.max(...rows.map((r) => r[0].length)), 10, 10];
  console.log(`${'measure'.padEnd(w[0]!)}  ${'hotplugd'.padStart(w[1]!)}  ${'libkmod'.padStart(w[2]!)}  ratio / target`);
  for (const r of rows) console.log(`${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2].padStart(w[2]!)}  ${r[3]}`);
}

main().catch((e: unknown) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exitCode = 1;
});
