/**
 * `hotplugd coldplug`: walk /sys once, load (or with --dry-run, report) what
 * every device needs, print the records, exit.
 */
import { type LoadQueue, LoadQueue as Queue } from '../core/queue.js';
import { EXIT } from '../errors.js';
import { walkSysfs } from '../sys/coldplug.js';
import { loadIndexWithCache } from '../sys/indexfs.js';
import { INDEX_FLAGS, INDEX_HELP, type Io, logCacheProblem, logIndexWarnings, parseFlags, writeCache } from './common.js';
import { queuePolicy, setup, SYSTEM_FLAGS, SYSTEM_HELP } from './daemon-setup.js';

export const COLDPLUG_HELP = `Usage: hotplugd coldplug [--dry-run] [INDEX FLAGS] [SYSTEM FLAGS]

Walk SYSFS/devices once and load what every device's MODALIAS needs, as
"run" does at start, then exit. With --dry-run nothing is loaded: the records
say "would-load" for each module and name the device (devpath) it is for.

  --dry-run    same as --mode dry-run
  -h, --help   this text

${INDEX_HELP}

${SYSTEM_HELP}

Exit codes: 0 done, every load succeeded (or would), 1 done but some loads
failed (see the "failed" records), 100 usage error, 111 system error.
`;

export async function coldplugCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...INDEX_FLAGS, ...SYSTEM_FLAGS, 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(COLDPLUG_HELP);
    return EXIT.OK;
  }
  if (values['dry-run']) values.mode = 'dry-run';
  const policy = queuePolicy(values);
  const s = setup(values, 'auto', io.stdout);
  if (s.fallback !== undefined) s.log.warn({ reason: s.fallback }, 'cannot load modules here: running as dry-run');
  const loaded = loadIndexWithCache(s.location, { write: true });
  const index = loaded.index;
  logCacheProblem(loaded.cache, s.log);
  logIndexWarnings(index, s.log);
  const queue: LoadQueue = new Queue({ index, kernel: s.kernel, log: s.log, modulesDir: s.location.modulesDir, ...policy });
  const r = await walkSysfs(s.paths.sysfs);
  const seen = new Set<string>();
  for (const e of r.entries) {
    if (seen.has(e.modalias)) continue;
    seen.add(e.modalias);
    queue.submit({ modalias: e.modalias, devpath: e.devpath, origin: 'coldplug' });
  }
  await queue.idle();
  s.log.info({ devices: r.devices, modaliases: r.entries.length, distinct: seen.size, unreadable: r.errors.length, ms: r.ms, ...queue.counts }, 'coldplug done');
  // After the loads: the cache write never delays them.
  if (loaded.cache?.write !== undefined) await writeCache(loaded.cache.write, s.log);
  s.log.flush();
  return queue.counts.failed > 0 ? EXIT.LOAD_FAILED : EXIT.OK;
}
