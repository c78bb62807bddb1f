/**
 * `hotplugd run`: the daemon.
 */
import { Daemon } from '../daemon.js';
import type { DaemonGauges } from '../metrics.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, HotplugError, isHotplugError } from '../errors.js';
import { type ColdplugEntry, walkSysfs } from '../sys/coldplug.js';
import { loadIndexWithCache } from '../sys/indexfs.js';
import { type PendingCacheWrite } from '../sys/index-cache.js';
import { NetlinkUeventSource } from '../sys/netlink.js';
import { CaughtSignals, type SignalSource } from '../signals.js';
import { SdNotifier } from '../sys/notify.js';
import { preloadDaemonCode } from '../preload.js';
import { formatAddress, parseListenAddress } from '../sys/listen-address.js';
import type { HealthSource, MetricsServer } from '../sys/metrics-http.js';
import { MetricsFeed } from '../metrics-feed.js';
import { hotplugErrorLine, INDEX_FLAGS, INDEX_HELP, type Io, logCacheProblem, logIndexWarnings, parseFlags, writeCacheRetrying } from './common.js';
import { CONTROL_RUN_FLAGS, CONTROL_RUN_HELP, controlGroup, parseSize, queuePolicy, readKernelSeqnum, readyAfter, setup, SYSTEM_FLAGS, SYSTEM_HELP } from './daemon-setup.js';
import { startControl } from '../control/start.js';
import { CONTROL_FLAGS } from '../control/client.js';

export const RUN_HELP = `Usage: hotplugd run [INDEX FLAGS] [SYSTEM FLAGS] [CONTROL FLAGS] [--rcvbuf SIZE]
                    [--resync-interval MS] [--skip-coldplug] [--demo]
                    [--metrics-listen ADDR:PORT]

Listen for kernel uevents (netlink, group 1, kernel senders only), walk
SYSFS/devices once (coldplug), and load the modules every MODALIAS needs,
one at a time by default (--jobs N: up to N at once), dependencies first.
One JSON record per module on stdout.

  --rcvbuf SIZE          uevent socket receive buffer, forced past
                         net.core.rmem_max as root (default 64M)
  --resync-interval MS   least time between two resync walks after lost
                         events (default 2000)
  --skip-coldplug        do not walk SYSFS at start (an initramfs did it);
                         walks after lost events still happen
  --demo                 dry-run on the Debian index this package ships
                         (works on a machine without a module tree), and
                         print a command that makes a device event
  --metrics-listen ADDR:PORT
                         serve Prometheus metrics over HTTP at
                         http://ADDR:PORT/metrics (off by default; an IP
                         address: 127.0.0.1:9101, [::1]:9101; port 0 picks
                         one, named in the "metrics endpoint listening"
                         record), and the probes /livez (200 until it stops)
                         and /readyz (200 once the start-up walk's loads are
                         done, else 503); the shipped unit allows no IP sockets: see
                         METRICS in hotplugd(8) for the drop-in
  -h, --help             this text

${INDEX_HELP}

${SYSTEM_HELP}

${CONTROL_RUN_HELP}

Signals: SIGTERM/SIGINT abort a walk in progress, let the loads in flight
finish and exit 0; SIGHUP reloads the index (choosing meta.pb or depmod's
files again), modprobe.d and the command line, then walks /sys again; SIGHUPs
during a reload merge into one more; a SIGHUP during start-up waits for it.
systemd: Type=notify (READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1); READY=1 is sent
once the control socket is bound and the coldplug requests are queued, or,
with --ready-after settled, once they are all done.
Exit codes: 0 stopped by a signal, 100 usage error, 111 system error (index
missing or corrupt, cannot load with --mode load, socket unavailable or
stopped working, --metrics-listen address in use); start-up failures exit
at once, without READY=1.
`;

/** The Debian fixture index this package ships: found beside the code (checkout) or installed. */
export function demoModulesDir(): string {
  const candidates = [process.env.HOTPLUGD_DEMO_INDEX, '/usr/share/hotplugd/example/debian-6.1.0-56-amd64'];
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    candidates.push(join(dir, 'test/fixtures/debian-6.1.0-56-amd64'));
  }
  const found = candidates.find((c) => c !== undefined && c !== '' && existsSync(join(c, 'modules.dep')));
  if (found === undefined) throw new HotplugError('E_INDEX_MISSING', 'the demo index is not installed (set HOTPLUGD_DEMO_INDEX to a depmod directory)');
  return found;
}

/** The device to suggest an event for: one whose driver a Debian index surely has (pcspkr, virtio, PCI). */
function betterHint(current: ColdplugEntry | undefined, e: ColdplugEntry): ColdplugEntry {
  const rank = (x: ColdplugEntry | undefined): number =>
    x === undefined ? 9 : x.modalias === 'platform:pcspkr' ? 0 : x.modalias.startsWith('virtio:') ? 1 : x.modalias.startsWith('pci:') ? 2 : 3;
  return rank(e) < rank(current) ? e : current!;
}

/**
 * A missing index on a kernel without module support: say so, and how to see
 * the daemon work anyway (not to one who already asked for the demo).
 */
function explainMissingIndex(e: unknown, procfs: string, demo: boolean): unknown {
  if (!isHotplugError(e) || e.code !== 'E_INDEX_MISSING' || existsSync(join(procfs, 'modules'))) return e;
  const seeDemo = demo ? '' : ': "hotplugd run --demo" shows the daemon at work on a shipped index';
  return new HotplugError('E_INDEX_MISSING', `${e.message}; this kernel has no loadable-module support (${join(procfs, 'modules')} is absent), so there is nothing to load here${seeDemo}`);
}

/** What the metrics read at each scrape (zeros before the queue exists). */
function daemonGauges(daemon: Daemon): DaemonGauges {
  const q = daemon.started ? daemon.queue : undefined;
  return { queueDepth: q?.depth ?? 0, inFlight: q?.serving ?? 0, stuck: q?.stuck ?? 0, ueventsReceived: daemon.stats.events };
}

/**
 * The probes of --metrics-listen: live until the daemon stops; ready once it
 * is running and the loads of its start-up walk are done (a container that
 * is ready has its node's drivers). Later uevents do not make it unready:
 * on a container host every pod's network devices move the kernel's seqnum
 * (see settle), and a readiness that flapped with them would say nothing.
 */
function probes(daemon: Daemon, settled: () => boolean): HealthSource {
  return {
    live: () => {
      const phase = daemon.phaseName;
      return phase === 'stopping' || phase === 'stopped' ? phase : undefined;
    },
    ready: () => {
      const phase = daemon.phaseName;
      if (phase !== 'running') return `not ready: ${phase}`;
      return settled() ? undefined : 'not ready: the start-up coldplug is not done';
    },
  };
}

export async function runDaemonCommand(args: string[], io: Io, signals: SignalSource = new CaughtSignals()): Promise<number> {
  const { values } = parseFlags(
    args,
    { ...INDEX_FLAGS, ...SYSTEM_FLAGS, ...CONTROL_FLAGS, ...CONTROL_RUN_FLAGS, rcvbuf: { type: 'string' }, 'resync-interval': { type: 'string' }, 'skip-coldplug': { type: 'boolean' }, demo: { type: 'boolean' }, 'metrics-listen': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    false,
  );
  if (values.help) {
    io.stdout.write(RUN_HELP);
    return EXIT.OK;
  }
  const rcvbuf = parseSize(values.rcvbuf ?? '64M', '--rcvbuf');
  const resyncRaw = values['resync-interval'] ?? '2000';
  if (!/^\d+$/.test(resyncRaw)) throw new HotplugError('E_USAGE', `--resync-interval takes milliseconds (got "${resyncRaw}")`);
  const metricsAt = values['metrics-listen'] !== undefined ? parseListenAddress(values['metrics-listen']) : undefined;
  if (values.demo) {
    // The real daemon (socket, walk, uevents) without loading anything, on a
    // machine that may have no module tree: the shipped Debian index.
    values.mode ??= 'dry-run';
    if (values.mode !== 'dry-run') throw new HotplugError('E_USAGE', '--demo runs in dry-run mode only');
    values['modules-dir'] ??= demoModulesDir();
    values.cmdline ??= '';
    values['cache-dir'] ??= ''; // a demo leaves no file behind
  }
  const group = controlGroup(values['control-group']);
  const ready = readyAfter(values['ready-after']);
  const s = setup(values, 'auto', io.stdout);
  const policy = queuePolicy(values);
  if (s.fallback !== undefined) s.log.warn({ reason: s.fallback }, 'cannot load modules here: running as dry-run');
  // Metrics count every record from here on (prom-client itself loads after
  // start-up, metrics-feed.ts); the gauges are read at each rendering. Served by
  // `hotplugd metrics` through the control socket, and over HTTP with
  // --metrics-listen (one rendering a second, shared by the scrapes: metrics-http.ts).
  const feed = new MetricsFeed(s.tap, () => daemonGauges(daemon));
  let cacheWrite: PendingCacheWrite | undefined;
  let cacheWrites = 0;
  const daemon = new Daemon({
    log: s.log,
    loadIndex: () => {
      const r = loadIndexWithCache(s.location, { write: true });
      logCacheProblem(r.cache, s.log);
      logIndexWarnings(r.index, s.log);
      cacheWrite = r.cache?.write;
      return r.index;
    },
    // The cache is written once start-up is done and the queue has drained:
    // encoding it holds the event loop for a while (~0.1 s on Debian's
    // index), which must not delay the first loads.
    idle: () => {
      const w = cacheWrite;
      cacheWrite = undefined;
      if (w === undefined) return;
      const generation = ++cacheWrites;
      void writeCacheRetrying(w, s.log, () => generation !== cacheWrites);
    },
    kernel: s.kernel,
    openSource: () => {
      try {
        return new NetlinkUeventSource({ rcvbuf, procfs: s.paths.procfs });
      } catch (e) {
        throw new HotplugError('E_SYSTEM', `uevent socket: ${(e as Error).message}`, { cause: e });
      }
    },
    walk: (onEntry, signal) =>
      walkSysfs(s.paths.sysfs, {
        onEntry: (e) => {
          if (values.demo) hint = betterHint(hint, e);
          onEntry(e);
        },
        signal,
      }),
    readKernelSeqnum: () => readKernelSeqnum(s.paths.sysfs),
    notifier: new SdNotifier(),
    modulesDir: s.location.modulesDir,
    watchdogUsec: process.env.WATCHDOG_USEC !== undefined ? Number(process.env.WATCHDOG_USEC) : undefined,
    resyncIntervalMs: Number(resyncRaw),
    skipColdplug: values['skip-coldplug'] === true,
    queue: policy,
    readyAfter: ready,
    preload: preloadDaemonCode,
  });
  // Bound before start (settle callers may connect while coldplug runs); a
  // --control path that cannot be bound fails start-up (exit 111).
  const control = await startControl({
    daemon,
    tap: s.tap,
    log: s.log,
    path: values.control,
    yieldToLive: values.demo === true,
    group,
    procfs: s.paths.procfs,
    sysfs: s.paths.sysfs,
    info: { mode: s.kernel.loads ? 'load' : 'dry-run', jobs: policy.jobs ?? 1, modulesDir: s.location.modulesDir, control: '' },
    handlers: { metrics: { access: 'read', run: async () => ({ ok: true, contentType: feed.contentType, text: await feed.text() }) } },
  });
  // SIGTERM stops at once, even during start-up (the walk is aborted); a
  // SIGHUP during start-up waits for it; SIGHUPs during a reload merge into one more.
  let hint: ColdplugEntry | undefined;
  let started = false;
  let hupDuringStart = false;
  const stopped = new Promise<number>((resolve) => {
    signals.attach((signal) => {
      if (signal === 'SIGHUP') {
        if (!started) hupDuringStart = true;
        else reload();
        return;
      }
      s.log.info({ signal }, 'stopping');
      control.close();
      void daemon.stop().then(() => resolve(EXIT.OK));
    });
  });
  const reload = (): void => {
    daemon.reload().catch((e: unknown) => s.log.error({ err: e }, 'reload failed unexpectedly'));
  };
  let metrics: MetricsServer | undefined;
  // /readyz: the start-up walk's loads are done (settled once), as `--ready-after settled`.
  let startupSettled = false;
  try {
    // Before the daemon starts: an address in use fails start-up at once.
    if (metricsAt !== undefined) {
      const { startMetricsServer } = await import('../sys/metrics-http.js');
      metrics = await startMetricsServer(metricsAt, feed, { health: probes(daemon, () => startupSettled) });
      const address = formatAddress(metrics.address);
      s.log.info({ address, url: `http://${address}/metrics` }, 'metrics endpoint listening');
    }
    await daemon.start();
  } catch (e) {
    control.close();
    await daemon.stop();
    await metrics?.close();
    throw explainMissingIndex(e, s.paths.procfs, values.demo === true);
  }
  if (values.demo) {
    // The device was served at coldplug, so its uevent changes nothing and writes no module record:
    // "then" is how to see what the daemon decided for it, and why.
    const devpath = hint?.devpath ?? '/devices/platform/pcspkr';
    // As it was started: the installed command, or this checkout's entry point.
    const self = (process.argv[1] ?? '').startsWith('/usr/lib/hotplugd/') ? 'hotplugd' : `node ${process.argv[1] ?? 'dist/src/cli.js'}`;
    const then = control.path === undefined ? undefined : `${self} why${control.path === '/run/hotplugd/control' ? '' : ` --control ${control.path}`} ${devpath}`;
    s.log.info(
      { try: `echo add > ${join(s.paths.sysfs, devpath)}/uevent`, ...(then !== undefined ? { then } : {}), index: s.location.modulesDir },
      'demo: dry-run on the shipped Debian index; make a device event (as root) with the command in "try", see what was decided with "then", stop with Ctrl-C',
    );
  }
  started = true;
  void daemon.waitSettled(Infinity).then((o) => (startupSettled ||= o.settled));
  if (hupDuringStart) reload();
  const fatal = daemon.fatal.then(async (e) => {
    control.close();
    await daemon.stop();
    io.stderr.write(hotplugErrorLine(e));
    return EXIT.SYSTEM;
  });
  const code = await Promise.race([stopped, fatal]);
  await metrics?.close();
  feed.close();
  s.log.flush();
  return code;
}
