/**
 * A process that stops once the index is ready, for `npm run bench`'s
 * "process start -> index ready" row: prints the ms since the process
 * started (performance.now()'s origin) when the index is loaded, the CPU
 * time the process has used by then, and the index's kind. Arguments: the module directory and the cache directory.
 */
import { loadIndexWithCache } from '../src/sys/indexfs.js';

const [modulesDir, cacheDir] = process.argv.slice(2);
const r = loadIndexWithCache({ modulesDir: modulesDir!, cacheDir, configDirs: [], cmdline: '' });
const ms = performance.now();
// CPU time to the same point (user + system, all threads: GC and compiler threads included), less sensitive than `ms` to what else runs on the machine.
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, kind: r.index.kind }));
