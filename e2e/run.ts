/**
 * `npm run e2e`: boot Debian's kernel in QEMU with hotplugd as the only
 * device manager, and check the whole chain against libkmod on the host:
 *
 * 1. coverage: every module libkmod names for a MODALIAS in the VM's /sys is
 *    loaded (or built in), except the blacklisted and the ones broken on
 *    purpose; the missing and the extra are printed;
 * 2. hotplug: QMP device_add of an rtl8139 NIC gets its driver within 10 s,
 *    the record naming the new device's devpath;
 * 3. records: all well-formed, no module loaded twice, no failure but the
 *    expected ones: the module broken on purpose, and drivers whose init
 *    answers ENODEV (the device is not theirs after all — e.g. CPU-feature
 *    aliases such as acpi_cpufreq on an emulated CPU; modprobe gets the same);
 * 4. modprobe.blacklist=pcspkr keeps pcspkr out while its device exists;
 * 5. scsi_common.ko is left out of the packed tree: a failed record for it,
 *    skipped records for its dependents, and the daemon goes on serving;
 * 6. modprobe.d `install virtio_rng /bin/true` (how CIS/STIG disable a
 *    module): the command runs instead of the load, virtio_rng stays out of
 *    the kernel, and its record says so;
 * 7. `rmmod e1000`, then an `add` uevent for its device: the daemon asks the
 *    kernel, sees the module gone, and loads it again.
 *
 * Prints a JSON summary and a table; exits 1 when an assertion fails.
 * Env: HOTPLUGD_E2E_ACCEL=kvm to try KVM (nested KVM hangs on some hosts),
 * HOTPLUGD_CACHE for the kernel download cache.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coverage } from './coverage.js';
import { buildInitramfs, HOTPLUGD_START } from './initramfs.js';
import { standardDevices, Vm } from './vm.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, '.cache/e2e');
const BLACKLISTED = ['pcspkr'];
const REMOVED = 'kernel/drivers/scsi/scsi_common.ko';
const BROKEN = 'scsi_common';
/** Disabled the CIS/STIG way: the install command runs instead of the load. */
const INSTALL_TRUE = 'virtio_rng';
/** Removed with rmmod after settling, then asked for again by a uevent. */
const RMMOD = 'e1000';

type Rec = Record<string, unknown>;

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

function log(msg: string): void {
  process.stderr.write(`e2e: ${msg}\n`);
}

async function main(): Promise<number> {
  mkdirSync(CACHE, { recursive: true });
  const moduleRoot = sh(join(ROOT, 'scripts/fetch-kernel.sh'), []).trim();
  const abi = sh('ls', [join(moduleRoot, 'lib/modules')]).trim().split('\n')[0]!;
  const modDir = join(moduleRoot, 'lib/modules', abi);
  const harness = join(CACHE, 'kmod-lookup');
  sh('gcc', ['-O2', '-o', harness, join(ROOT, 'test/conformance/kmod-lookup.c'), '-lkmod']);

  const work = mkdtempSync(join(CACHE, 'run-'));
  const initrd = join(work, 'initrd.cpio');
  let t = Date.now();
  const init = readFileSync(join(ROOT, 'e2e/init.sh'), 'utf8').replace(/^@@MANAGER@@$/m, () => HOTPLUGD_START);
  const conf = join(work, 'e2e.conf');
  writeFileSync(conf, `# how CIS/STIG benchmarks disable a module\ninstall ${INSTALL_TRUE} /bin/true\n`);
  buildInitramfs({ root: ROOT, cache: CACHE, moduleRoot, abi, init, remove: [REMOVED], out: initrd, extra: [[conf, '/etc/modprobe.d/e2e.conf']] });
  log(`initramfs built in ${Date.now() - t} ms (${(readFileSync(initrd).length / 1048576).toFixed(0)} MiB)`);

  const accel = process.env.HOTPLUGD_E2E_ACCEL ?? 'tcg';
  const vm = new Vm({
    dir: work,
    kernel: join(moduleRoot, 'boot', `vmlinuz-${abi}`),
    initrd,
    append: `console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init modprobe.blacklist=${BLACKLISTED.join(',')}`,
    accel,
    memoryMb: 3072,
    devices: standardDevices(work),
  });
  const failures: string[] = [];
  const records: Rec[] = [];
  const malformed: string[] = [];
  const pump = (): void => {
    for (const line of vm.readConsole()) {
      if (!line.startsWith('{')) continue;
      try {
        records.push(JSON.parse(line) as Rec);
      } catch {
        malformed.push(line);
      }
    }
  };
  try {
    t = Date.now();
    await vm.connect();
    await vm.guestReady(240000);
    log(`guest up in ${Date.now() - t} ms (${accel})`);

    // Settle: a settled record after the last module record, then 5 s of quiet.
    const quietMs = 5000;
    let lastCount = -1;
    let quietSince = Date.now();
    const deadline = Date.now() + 300000;
    for (;;) {
      pump();
      if (records.length !== lastCount) {
        lastCount = records.length;
        quietSince = Date.now();
      }
      const lastModule = records.map((r) => r.msg).lastIndexOf('module');
      const lastSettled = records.map((r) => r.msg).lastIndexOf('settled');
      if (lastSettled > lastModule && lastSettled >= 0 && Date.now() - quietSince > quietMs) break;
      if (Date.now() > deadline) throw new Error('the daemon did not settle within 300 s');
      if (vm.proc.exitCode !== null) throw new Error(`QEMU exited: ${vm.stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const settledRec = records.filter((r) => r.msg === 'settled').at(-1)!;
    const dump = await vm.dump();
    pump();

    // Expectations from libkmod on the host, same module directory.
    const distinct = [...new Set(dump.modaliases.map((m) => m.modalias))];
    const answers = sh(harness, [modDir], distinct.join('\n') + '\n').split('\n');
    const loaded = new Set(dump.modules);
    const moduleRecs = records.filter((r) => r.msg === 'module');
    const { expected, builtin, declined, missing, extra } = coverage({
      answers, moduleRoot, abi, loaded, moduleRecs, broken: BROKEN, exempt: new Set([...BLACKLISTED, INSTALL_TRUE]),
    });

    // 1. coverage
    if (missing.length > 0) failures.push(`coverage: missing ${missing.join(' ')}`);
    if (extra.length > 0) failures.push(`coverage: extra ${extra.join(' ')}`);
    // 3. records
    if (malformed.length > 0) failures.push(`records: ${malformed.length} malformed lines, first: ${malformed[0]!.slice(0, 200)}`);
    for (const r of moduleRecs) if (typeof r.module !== 'string' || typeof r.result !== 'string') failures.push(`records: malformed ${JSON.stringify(r)}`);
    const loadedTwice = [...new Set(moduleRecs.filter((r) => r.result === 'loaded').map((r) => r.module as string))].filter(
      (m) => moduleRecs.filter((r) => r.result === 'loaded' && r.module === m).length > 1,
    );
    if (loadedTwice.length > 0) failures.push(`records: loaded twice: ${loadedTwice.join(' ')}`);
    const unexpectedFailed = moduleRecs.filter((r) => r.result === 'failed' && r.module !== BROKEN && r.code !== 'ENODEV');
    if (unexpectedFailed.length > 0) failures.push(`records: unexpected failures: ${unexpectedFailed.map((r) => `${r.module}:${r.code}`).join(' ')}`);
    // 4. blacklist
    for (const m of BLACKLISTED) {
      if (loaded.has(m)) failures.push(`blacklist: ${m} is loaded`);
      if (!moduleRecs.some((r) => r.module === m && r.result === 'blacklisted')) failures.push(`blacklist: no blacklisted record for ${m}`);
    }
    // 5. the broken dependency
    const brokenRec = moduleRecs.find((r) => r.module === BROKEN && r.result === 'failed');
    if (!brokenRec) failures.push(`failure: no failed record for ${BROKEN}`);
    else if (brokenRec.code !== 'ENOENT') failures.push(`failure: ${BROKEN} failed with ${String(brokenRec.code)}, expected ENOENT`);
    const skipped = [...new Set(moduleRecs.filter((r) => r.result === 'skipped' && r.failedDependency === BROKEN).map((r) => r.module as string))];
    if (skipped.length === 0) failures.push(`failure: no skipped record naming ${BROKEN}`);

    // 6. install /bin/true instead of loading
    if (loaded.has(INSTALL_TRUE)) failures.push(`install: ${INSTALL_TRUE} is loaded although its install command is /bin/true`);
    const installRec = moduleRecs.find((r) => r.module === INSTALL_TRUE);
    if (installRec?.result !== 'install-command' || installRec.exitCode !== 0) {
      failures.push(`install: expected an install-command record with exitCode 0 for ${INSTALL_TRUE}, got ${JSON.stringify(installRec)}`);
    }

    // 7. rmmod, then a uevent: loaded again (the daemon asks the kernel, not its memory)
    let reloadRec: Rec | undefined;
    const nic = dump.modaliases.find((m) => m.modalias.startsWith('pci:v00008086d0000100E'));
    if (!loaded.has(RMMOD) || nic === undefined) failures.push(`rmmod: ${RMMOD} was not loaded for its device to begin with`);
    else {
      const rm = await vm.run(`rmmod ${RMMOD} && ! grep -q '^${RMMOD} ' /proc/modules`);
      if (rm.status !== 0) failures.push(`rmmod: rmmod ${RMMOD} failed: ${rm.output.join(' ')}`);
      const from = records.length;
      await vm.run(`echo add > /sys${nic.devpath}/uevent`);
      const t0 = Date.now();
      while (Date.now() - t0 < 10000 && !reloadRec) {
        pump();
        reloadRec = records.slice(from).find((r) => r.msg === 'module' && r.module === RMMOD && r.origin === 'uevent' && r.result === 'loaded');
        if (!reloadRec) await new Promise((r) => setTimeout(r, 100));
      }
      const back = await vm.run(`grep -q '^${RMMOD} ' /proc/modules`);
      if (!reloadRec || back.status !== 0) failures.push(`rmmod: ${RMMOD} was not loaded again after rmmod and an add uevent`);
    }

    // 2. hotplug after boot
    const before = records.length;
    const addedAt = Date.now();
    await vm.qmpCall('device_add', { driver: 'rtl8139', id: 'hot0' });
    let hotRec: Rec | undefined;
    while (Date.now() - addedAt < 10000 && !hotRec) {
      pump();
      hotRec = records.slice(before).find((r) => r.msg === 'module' && r.origin === 'uevent' && (r.module === '8139too' || r.module === '8139cp') && r.result === 'loaded');
      if (!hotRec) await new Promise((r) => setTimeout(r, 100));
    }
    const hotplugMs = Date.now() - addedAt;
    if (!hotRec) failures.push('hotplug: no load record for the rtl8139 NIC within 10 s of device_add');
    else if (!/^\/devices\/pci0000:00\/0000:00:[0-9a-f]{2}\.0$/.test(String(hotRec.devpath))) failures.push(`hotplug: unexpected devpath ${String(hotRec.devpath)}`);

    const summary = {
      kernel: abi,
      accel,
      devices: new Set(dump.modaliases.map((m) => m.devpath)).size,
      modaliases: dump.modaliases.length,
      distinctModaliases: distinct.length,
      modulesExpected: expected.size,
      builtinExpected: [...expected].filter((m) => builtin.has(m)).length,
      loaded: loaded.size,
      missing,
      extra,
      blacklisted: BLACKLISTED,
      declinedENODEV: [...declined].sort(),
      brokenOnPurpose: { module: BROKEN, dependentsSkipped: skipped },
      daemonStartToSettledMs: settledRec.sinceStartMs,
      hotplug: hotRec ? { module: hotRec.module, devpath: hotRec.devpath, ms: hotplugMs } : null,
      installCommand: installRec ?? null,
      reloadedAfterRmmod: reloadRec ? { module: reloadRec.module, devpath: reloadRec.devpath } : null,
      records: moduleRecs.length,
      failures,
    };
    writeFileSync(join(CACHE, 'summary.json'), JSON.stringify(summary, null, 2));
    console.log(JSON.stringify(summary, null, 2));
    const rows: [string, string][] = [
      ['devices with a MODALIAS', String(summary.devices)],
      ['distinct modaliases', String(summary.distinctModaliases)],
      ['modules expected (libkmod)', `${summary.modulesExpected} (${summary.builtinExpected} built in)`],
      ['modules loaded (/proc/modules)', String(summary.loaded)],
      ['declined by the driver (ENODEV)', `${declined.size} (with dependents)`],
      ['missing', String(missing.length)],
      ['extra', String(extra.length)],
      ['daemon start -> settled (ms)', String(summary.daemonStartToSettledMs)],
      ['hotplug device_add -> loaded (ms)', hotRec ? String(hotplugMs) : '-'],
    ];
    for (const [k, v] of rows) console.log(`${k.padEnd(36)} ${v}`);
    console.log(failures.length === 0 ? 'e2e: all assertions hold' : `e2e: ${failures.length} assertion(s) failed:\n  ${failures.join('\n  ')}`);
    return failures.length === 0 ? 0 : 1;
  } catch (e) {
    pump();
    log(`error: ${(e as Error).message}`);
    log(`last console lines:\n${readFileSync(vm.console, 'latin1').split('\n').slice(-30).join('\n')}`);
    return 1;
  } finally {
    await vm.poweroff();
  }
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  },
);
