/**
 * `hotplugd run`: the daemon.
 */
import { Daemon } from '../daemon.js';
import { EXIT, HotplugError } from '../errors.js';
import { walkSysfs } from '../sys/coldplug.js';
import { loadIndex } from '../sys/indexfs.js';
import { NetlinkUeventSource } from '../sys/netlink.js';
import { SdNotifier } from '../sys/notify.js';
import { INDEX_FLAGS, INDEX_HELP, type Io, parseFlags } from './common.js';
import { parseSize, readKernelSeqnum, setup, SYSTEM_FLAGS, SYSTEM_HELP } from './daemon-setup.js';
import { summarizeWarnings } from './match.js';

export const RUN_HELP = `Usage: hotplugd run [INDEX FLAGS] [SYSTEM FLAGS] [--rcvbuf SIZE] [--resync-interval MS] [--skip-coldplug]

Listen for kernel uevents (netlink, group 1, kernel senders only), walk
SYSFS/devices once (coldplug), and load the modules every MODALIAS needs,
one at a time, dependencies first. One JSON record per module on stdout.

  --rcvbuf SIZE          uevent socket receive buffer, forced past
                         net.core.rmem_max as root (default 64M)
  --resync-interval MS   least time between two resync walks after lost
                         events (default 2000)
  --skip-coldplug        do not walk SYSFS at start (an initramfs did it);
                         walks after lost events still happen
  -h, --help             this text

${INDEX_HELP}

${SYSTEM_HELP}

Signals: SIGTERM/SIGINT finish the load in flight and exit 0; SIGHUP reloads
the index and modprobe.d, then walks /sys again.
systemd: Type=notify (READY=1, STATUS=, WATCHDOG=1, STOPPING=1).
Exit codes: 0 stopped by a signal, 100 usage error, 111 system error (index
missing or corrupt, cannot load with --mode load, socket unavailable).
`;

export async function runDaemonCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...INDEX_FLAGS, ...SYSTEM_FLAGS, rcvbuf: { type: 'string' }, 'resync-interval': { type: 'string' }, 'skip-coldplug': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    false,
  );
  void positionals;
  if (values.help) {
    io.stdout.write(RUN_HELP);
    return EXIT.OK;
  }
  const rcvbuf = parseSize((values.rcvbuf as string | undefined) ?? '64M', '--rcvbuf');
  const resyncRaw = (values['resync-interval'] as string | undefined) ?? '2000';
  if (!/^\d+$/.test(resyncRaw)) throw new HotplugError('E_USAGE', `--resync-interval takes milliseconds (got "${resyncRaw}")`);
  const s = setup(values, 'auto', io.stdout);
  if (s.fallback !== undefined) s.log.warn({ reason: s.fallback }, 'cannot load modules here: running as dry-run');
  const daemon = new Daemon({
    log: s.log,
    loadIndex: () => {
      const index = loadIndex(s.location);
      for (const w of summarizeWarnings(index)) s.log.warn({ detail: w }, 'index lines skipped');
      return index;
    },
    kernel: s.kernel,
    openSource: () => {
      try {
        return new NetlinkUeventSource({ rcvbuf, procfs: s.paths.procfs });
      } catch (e) {
        throw new HotplugError('E_SYSTEM', `uevent socket: ${(e as Error).message}`, { cause: e });
      }
    },
    walk: (onEntry) => walkSysfs(s.paths.sysfs, onEntry),
    readKernelSeqnum: () => readKernelSeqnum(s.paths.sysfs),
    notifier: new SdNotifier(),
    modulesDir: s.location.modulesDir,
    watchdogUsec: process.env.WATCHDOG_USEC !== undefined ? Number(process.env.WATCHDOG_USEC) : undefined,
    resyncIntervalMs: Number(resyncRaw),
    skipColdplug: values['skip-coldplug'] === true,
  });
  // Handlers first: a signal that arrives while start() runs must not take
  // its default action (SIGHUP would kill the process); it waits for start().
  let started: Promise<void> = Promise.resolve();
  const done = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      s.log.info({ signal }, 'stopping');
      void started
        .catch(() => undefined)
        .then(() => daemon.stop())
        .then(() => {
          s.log.flush();
          resolve(EXIT.OK);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void started.then(() => daemon.reload()).catch(() => undefined));
  });
  started = daemon.start();
  await started;
  return done;
}
