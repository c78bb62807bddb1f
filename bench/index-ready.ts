/**
 * A process that stops once the index is ready, for `npm run bench`'s
 * "process start -> index ready" row: prints the ms since the process
 * started (performance.now()'s origin) when the index is loaded, and its
 * kind. Arguments: the module directory and the cache directory.
 */
import { loadIndexWithCache } from '../src/sys/indexfs.js';

const [modulesDir, cacheDir] = process.argv.slice(2);
const r = loadIndexWithCache({ modulesDir: modulesDir!, cacheDir, configDirs: [], cmdline: '' });
const ms = performance.now();
process.stdout.write(JSON.stringify({ ms, kind: r.index.kind }));
