/**
 * `npm run bench:boot`: the same Debian kernel, the same devices, three device
 * managers, one at a time:
 * - hotplugd (`run --mode load`);
 * - systemd-udevd with its kmod builtin, as initramfs-tools runs it (Debian's
 *   udev package unpacked into the initramfs: --daemon, trigger subsystems
 *   and devices, settle);
 * - the classic shell loop (`find /sys -name modalias | ... | xargs modprobe
 *   -abq`, until nothing new loads) with Debian's kmod.
 * hotplugd and udevd boot alternately, N times each (`--runs N`, default 3;
 * the loop once, at the end): for each boot, time from the manager's start to
 * settled, when the coldplug walk was done (hotplugd's walkDone phase;
 * udevd's `udevadm trigger` runs returned), modules loaded, the difference
 * from hotplugd's set, the hotplug
 * latency (QMP device_add of a NIC -> its driver in /sys/module), and for
 * hotplugd the start-up phases of its first `settled` record; then the ratios
 * of the medians, hotplugd / udevd. A benchmark, not a test: it prints, it
 * does not assert. TCG, so the absolute times are those of an emulated CPU.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInitramfs, hotplugdStart, LOOP_START, UDEVD_START } from '../e2e/initramfs.js';
import { standardDevices, Vm } from '../e2e/vm.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, '.cache/e2e');

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

function log(msg: string): void {
  process.stderr.write(`bench:boot: ${msg}\n`);
}

/** Debian's udev package, unpacked (not installed: its scripts would start a udevd on this machine). */
function udevPackage(): string {
  const dir = join(CACHE, 'udev-pkg');
  if (!existsSync(join(dir, '.done'))) {
    mkdirSync(dir, { recursive: true });
    sh('apt-get', ['download', 'udev'], dir);
    const deb = readdirSync(dir).find((f) => f.startsWith('udev_') && f.endsWith('.deb'))!;
    sh('dpkg', ['-x', join(dir, deb), join(dir, 'root')]);
    writeFileSync(join(dir, '.done'), '');
  }
  return join(dir, 'root');
}

interface Outcome {
  manager: string;
  settleMs: number;
  modules: string[];
  /** The coldplug walk done, ms since the manager's start: hotplugd's walkDone phase; udevd's two `udevadm trigger` runs returned. */
  walkMs?: number | undefined;
  /** QMP device_add of an rtl8139 NIC -> its driver in /sys/module (undefined: none within 10 s). */
  hotplugMs?: number | undefined;
  /** hotplugd: its first settled record's start-up phases and load times. */
  startup?: { phases: Record<string, number>; loadMs: Record<string, unknown>; indexSource: string } | undefined;
}

/**
 * Hotplug latency, the same way for every manager: QMP device_add of an
 * rtl8139 NIC, then the guest polls (every 20 ms) until its driver is in
 * /sys/module; ms on the host's clock from device_add to the guest's answer
 * (the command channel's round trip included, alike for all). Undefined when
 * no driver came within 10 s.
 */
async function hotplug(vm: Vm): Promise<number | undefined> {
  const present = '[ -d /sys/module/8139too ] || [ -d /sys/module/8139cp ]';
  const addedAt = Date.now();
  await vm.qmpCall('device_add', { driver: 'rtl8139', id: 'hot0' });
  const r = await vm.run(`i=0; until ${present} || [ $i -ge 500 ]; do usleep 20000; i=$((i+1)); done; ${present}`);
  return r.status === 0 ? Date.now() - addedAt : undefined;
}

async function boot(manager: string, start: string, moduleRoot: string, abi: string, extra: Partial<Parameters<typeof buildInitramfs>[0]>): Promise<Outcome> {
  const work = mkdtempSync(join(CACHE, `boot-${manager}-`));
  const initrd = join(work, 'initrd.cpio');
  const init = readFileSync(join(ROOT, 'e2e/init.sh'), 'utf8').replace(/^@@MANAGER@@$/m, () => start);
  buildInitramfs({ root: ROOT, cache: CACHE, moduleRoot, abi, init, remove: [], out: initrd, ...extra });
  const vm = new Vm({
    dir: work,
    kernel: join(moduleRoot, 'boot', `vmlinuz-${abi}`),
    initrd,
    append: 'console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init',
    accel: process.env.HOTPLUGD_E2E_ACCEL ?? 'tcg',
    memoryMb: 3072,
    devices: standardDevices(work),
  });
  try {
    await vm.connect();
    const lines: string[] = [];
    const deadline = Date.now() + 600000;
    let settleMs: number | undefined;
    let startup: Outcome['startup'];
    let walkMs: number | undefined;
    let quietSince = Date.now();
    for (;;) {
      const fresh = vm.readConsole();
      if (fresh.length > 0) quietSince = Date.now();
      lines.push(...fresh);
      const start = lines.map((l) => /^@@T start ([\d.]+)/.exec(l)).find(Boolean);
      const settled = lines.map((l) => /^@@T settled ([\d.]+)/.exec(l)).find(Boolean);
      const triggered = lines.map((l) => /^@@T triggered ([\d.]+)/.exec(l)).find(Boolean);
      if (start && settled) {
        settleMs = Math.round((Number(settled[1]) - Number(start[1])) * 1000);
        if (triggered) walkMs = Math.round((Number(triggered[1]) - Number(start[1])) * 1000);
        break;
      }
      if (manager.startsWith('hotplugd')) {
        // hotplugd runs on: settled = its last "settled" record once the console is quiet.
        const recs = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        const lastModule = recs.map((r) => r.msg).lastIndexOf('module');
        const lastSettled = recs.map((r) => r.msg).lastIndexOf('settled');
        if (lastSettled > lastModule && Date.now() - quietSince > 5000) {
          settleMs = recs[lastSettled]!.processMs as number;
          const first = recs.find((r) => r.msg === 'settled' && r.phases !== undefined);
          startup = first as Outcome['startup'];
          const walked = (first?.phases as Record<string, number> | undefined)?.walkDone;
          if (walked !== undefined) walkMs = Math.round(walked);
          break;
        }
      }
      if (Date.now() > deadline) throw new Error(`${manager} did not settle within 600 s`);
      if (vm.proc.exitCode !== null) throw new Error(`QEMU exited: ${vm.stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    // Give every manager the same 5 s before looking: udevd keeps running after
    // `udevadm settle` (a USB disk is scanned a second after it appears).
    if (!manager.startsWith('hotplugd')) await new Promise((r) => setTimeout(r, 5000));
    await vm.guestReady(60000);
    const dump = await vm.dump();
    const hotplugMs = manager === 'modprobe loop' ? undefined : await hotplug(vm); // the loop has no listener
    return { manager, settleMs, modules: dump.modules.sort(), startup, hotplugMs, walkMs };
  } finally {
    await vm.poweroff();
  }
}

async function main(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const moduleRoot = sh(join(ROOT, 'scripts/fetch-kernel.sh'), []).trim();
  const abi = sh('ls', [join(moduleRoot, 'lib/modules')]).trim().split('\n')[0]!;
  const udev = udevPackage();
  const kmodFiles = ['/bin/kmod'];
  const runs: Outcome[] = [];
  // hotplugd reads a meta.pb with compiled matchers, as udevd reads depmod's binary indexes.
  const meta = join(CACHE, 'bench-boot-meta.pb');
  sh(process.execPath, [join(ROOT, 'dist/src/cli.js'), 'build-meta', '--from-depmod', join(moduleRoot, 'lib/modules', abi), '-o', meta]);
  const n = runsFlag();
  const variants = hotplugdVariants();
  for (let i = 1; i <= n; i++) {
    for (const v of variants) {
      log(`run ${i}/${n}: booting with ${v.name}`);
      runs.push(await boot(v.name, hotplugdStart(v.flags), moduleRoot, abi, { extra: [[meta, `/lib/modules/${abi}/meta.pb`]] }));
    }
    log(`run ${i}/${n}: booting with systemd-udevd`);
    runs.push(
      await boot('systemd-udevd', UDEVD_START, moduleRoot, abi, {
        hostFiles: kmodFiles,
        extra: [
          [join(udev, 'bin/udevadm'), '/bin/udevadm'],
          [join(udev, 'bin/udevadm'), '/lib/systemd/systemd-udevd'],
          [join(udev, 'lib/udev'), '/lib/udev'],
          ...libsOf(join(udev, 'bin/udevadm')),
        ],
      }),
    );
  }
  log('booting with the shell modprobe loop');
  runs.push(
    await boot('modprobe loop', LOOP_START, moduleRoot, abi, {
      hostFiles: kmodFiles,
      extra: [['/bin/kmod', '/sbin/modprobe']],
    }),
  );
  const base = new Set(runs[0]!.modules);
  console.log(`kernel ${abi}, ${process.env.HOTPLUGD_E2E_ACCEL ?? 'tcg'}; time from the manager's start to settled\n`);
  console.log(`${'manager'.padEnd(20)} ${'settled (ms)'.padStart(12)} ${'walked (ms)'.padStart(12)} ${'hotplug (ms)'.padStart(12)} ${'modules'.padStart(8)}  difference from hotplugd`);
  for (const r of runs) {
    const set = new Set(r.modules);
    const more = r.modules.filter((m) => !base.has(m));
    const less = [...base].filter((m) => !set.has(m));
    const diff = r === runs[0] ? '-' : more.length + less.length === 0 ? 'same set' : `+${more.join(',') || '0'} -${less.join(',') || '0'}`;
    console.log(`${r.manager.padEnd(20)} ${String(r.settleMs).padStart(12)} ${String(r.walkMs ?? '-').padStart(12)} ${String(r.hotplugMs ?? 'none').padStart(12)} ${String(r.modules.length).padStart(8)}  ${diff}`);
    if (r.startup !== undefined) {
      const p = Object.entries(r.startup.phases).map(([k, v]) => `${k} ${Math.round(v)}`);
      console.log(`${''.padEnd(16)}   phases (ms since process start): ${p.join(', ')}`);
      console.log(`${''.padEnd(16)}   index ${r.startup.indexSource}; finit_module ${JSON.stringify(r.startup.loadMs)}`);
    }
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const of = (m: string): number[] => runs.filter((r) => r.manager === m).map((r) => r.settleMs);
  const hot = (m: string): number[] => runs.filter((r) => r.manager === m && r.hotplugMs !== undefined).map((r) => r.hotplugMs!);
  const u = median(of('systemd-udevd'));
  const uh = median(hot('systemd-udevd'));
  console.log(`\nmedian over ${n} alternating runs: systemd-udevd settled ${Math.round(u)} ms, hotplug ${Math.round(uh)} ms`);
  for (const v of variants) {
    const h = median(of(v.name));
    const hh = median(hot(v.name));
    console.log(`  ${v.name}: settled ${Math.round(h)} ms, ratio to udevd ${(h / u).toFixed(2)}; hotplug ${Math.round(hh)} ms, ratio ${(hh / uh).toFixed(2)}`);
  }
  writeFileSync(join(CACHE, 'boot-bench.json'), JSON.stringify(runs, null, 2));
}

/**
 * `--hotplugd FLAGS` (repeatable): a hotplugd variant per value, each booted in
 * every run, e.g. `--hotplugd '--jobs 1' --hotplugd '--jobs auto'`; default one, no flags.
 */
function hotplugdVariants(): { name: string; flags: string }[] {
  const flags: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === '--hotplugd') flags.push(process.argv[i + 1] ?? '');
  });
  if (flags.length === 0) return [{ name: 'hotplugd', flags: '' }];
  return flags.map((f) => ({ name: `hotplugd ${f}`.trim(), flags: f }));
}

/** `--runs N`: alternating hotplugd/udevd boots (default 3). */
function runsFlag(): number {
  const i = process.argv.indexOf('--runs');
  const n = i >= 0 ? Number(process.argv[i + 1]) : 3;
  if (!Number.isInteger(n) || n < 1) throw new Error('--runs takes a whole number >= 1');
  return n;
}

/** Shared libraries of an executable from a package unpacked elsewhere, at their host paths. */
function libsOf(exe: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of sh('ldd', [exe]).split('\n')) {
    const m = /(\/\S+) \(0x/.exec(line);
    if (m) out.push([m[1]!, m[1]!]);
  }
  return out;
}

main().catch((e: unknown) => {
  log(`error: ${(e as Error).stack ?? String(e)}`);
  process.exitCode = 1;
});
