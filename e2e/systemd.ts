/**
 * `npm run e2e:systemd`: the package under a real systemd. A Debian bookworm
 * root file system (mmdebstrap, cached in ~/.cache/hotplugd/guest) with
 * systemd as PID 1 and udev, the .deb of `npm run package` installed with
 * `dpkg -i` in a chroot, Debian's kernel, and an initramfs that loads only
 * what reaches the root disk (virtio_pci, virtio_blk, ext4 and their
 * dependencies) before switch_root. The guest boots twice from one disk
 * (QEMU TCG); the host drives e2e/agent.sh (a unit ordered after
 * multi-user.target) on ttyS1 and checks what only a real systemd shows:
 *
 *  1. order: hotplugd.service active before sysinit.target
 *     (ActiveEnterTimestampMonotonic of both);
 *  2. sandbox: the main process's /proc/PID/status: Seccomp 2 (filter),
 *     NoNewPrivs 1, CapBnd/CapEff exactly CAP_SYS_MODULE and CAP_NET_ADMIN;
 *  3. journal: `journalctl -u hotplugd -p err` lists exactly the records of
 *     failed loads (scsi_common.ko is left out of the tree on purpose;
 *     drivers answering ENODEV fail too);
 *  4. coverage: every module `modprobe -R` names in the guest for a MODALIAS
 *     in its /sys is loaded (or built in, blacklisted, declined with ENODEV,
 *     or needs the broken one);
 *  5. udev loads nothing: no effective udev rule runs `kmod load`, and no
 *     module the daemon was asked for was already loaded by someone other
 *     than the initramfs or systemd itself (PID 1's kmod-setup, modprobe@);
 *  6. hotplug under the sandbox: QMP device_add of an rtl8139 NIC, its
 *     driver loaded by the unit's daemon from a uevent;
 *  7. `systemctl kill -s KILL`: Restart=on-failure starts a new daemon that
 *     walks /sys again (a new `coldplug` record from the new PID);
 *  8. `systemctl reload`: exit status 0, the unit `active` (not still
 *     `reloading`) when it returns, and a `reloaded` record written before
 *     it returned (the guest's clock);
 *  9. the index cache: written during boot 1, the `listening` record of
 *     boot 2 says kind `cache`;
 * 10. `systemd-analyze time` and `critical-chain` kept as artifacts in
 *     .cache/e2e/systemd/ (their paths are printed).
 *
 * Prints a JSON summary; on failure, what failed and the guest's journal.
 * Exits 1 when an assertion fails. Env: HOTPLUGD_E2E_ACCEL=kvm to try KVM,
 * HOTPLUGD_CACHE for the kernel and root file system caches.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { coverage, type Rec } from './coverage.js';
import { baseRootfs, guestDisk } from './guest-rootfs.js';
import { buildRootInitramfs } from './initramfs.js';
import { standardDevices, Vm } from './vm.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OUT = join(ROOT, '.cache/e2e/systemd');
const CACHE = process.env.HOTPLUGD_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'hotplugd');
const REMOVED = 'kernel/drivers/scsi/scsi_common.ko';
const BROKEN = 'scsi_common';
const ROOT_SERIAL = 'hotplugd-root';
const ROOT_MODULES = ['virtio_pci', 'virtio_blk', 'ext4'];
/**
 * Loaded by systemd itself, not by a device manager: PID 1's kmod-setup
 * (autofs4, ipv6, unix, ip_tables, virtio_rng on a virtio machine,
 * qemu_fw_cfg in QEMU) and sysinit's modprobe@.service instances (configfs,
 * dm_mod, drm, efi_pstore, fuse, loop).
 */
const SYSTEMD_OWN = new Set(['autofs4', 'ipv6', 'unix', 'ip_tables', 'virtio_rng', 'qemu_fw_cfg', 'configfs', 'dm_mod', 'drm', 'efi_pstore', 'fuse', 'loop']);
/** CAP_NET_ADMIN (12) and CAP_SYS_MODULE (16): the unit's CapabilityBoundingSet=. */
const CAPS = ((1n << 12n) | (1n << 16n)).toString(16).padStart(16, '0');
const UNIT = 'hotplugd.service';
/** Which udev rule files are in effect (first of a name by directory priority) and run `kmod load`. */
const UDEV_KMOD_RULES = `dirs="/etc/udev/rules.d /run/udev/rules.d /usr/local/lib/udev/rules.d /usr/lib/udev/rules.d"
for f in $(for d in $dirs; do ls -1 "$d" 2>/dev/null; done | grep '[.]rules$' | sort -u); do
  for d in $dirs; do
    if [ -e "$d/$f" ] || [ -L "$d/$f" ]; then grep -l 'kmod load' "$d/$f" 2>/dev/null; break; fi
  done
done; true`;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

function log(msg: string): void {
  process.stderr.write(`e2e:systemd: ${msg}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parseRecords(lines: string[]): Rec[] {
  const out: Rec[] = [];
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Rec);
    } catch {
      // a line journald split: not a record
    }
  }
  return out;
}

interface Boot {
  n: number;
  readyMs: number;
  failures: string[];
  facts: Record<string, unknown>;
}

class Guest {
  constructor(
    readonly vm: Vm,
    readonly boot: Boot,
  ) {}

  fail(what: string): void {
    this.boot.failures.push(`boot ${this.boot.n}: ${what}`);
  }

  async run(cmd: string, ms = 60000): Promise<{ output: string[]; status: number }> {
    return this.vm.run(cmd, ms);
  }

  /** A command's output; a non-zero status is a failure named `what`. */
  async out(cmd: string, what: string, ms = 60000): Promise<string> {
    const r = await this.vm.run(cmd, ms);
    if (r.status !== 0) this.fail(`${what}: \`${cmd}\` exited ${r.status}: ${r.output.slice(-5).join(' | ')}`);
    return r.output.join('\n');
  }

  async prop(unit: string, p: string): Promise<string> {
    return (await this.out(`systemctl show -p ${p} --value ${unit}`, `systemctl show ${p}`)).trim();
  }

  async records(): Promise<Rec[]> {
    const r = await this.vm.run(`journalctl -b -u ${UNIT} -o cat --no-pager`, 120000);
    return parseRecords(r.output);
  }

  /** Poll `check` every second until it returns a value or `ms` pass. */
  async until<T>(ms: number, check: () => Promise<T | undefined>): Promise<T | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await check();
      if (v !== undefined || Date.now() > end) return v;
      await sleep(1000);
    }
  }
}

interface Setup {
  moduleRoot: string;
  abi: string;
  work: string;
  disk: string;
  initrd: string;
  initramfsModules: string[];
  kernel: string;
}

async function boot(s: Setup, n: number, check: (g: Guest) => Promise<void>): Promise<Boot> {
  const dir = join(s.work, `boot${n}`);
  mkdirSync(dir, { recursive: true });
  const b: Boot = { n, readyMs: 0, failures: [], facts: {} };
  const accel = process.env.HOTPLUGD_E2E_ACCEL ?? 'tcg';
  const vm = new Vm({
    dir,
    kernel: s.kernel,
    initrd: s.initrd,
    append: 'console=ttyS0 rdinit=/init panic=-1 loglevel=4 systemd.show_status=error',
    accel,
    memoryMb: 3072,
    devices: [
      '-drive', `file=${s.disk},if=none,id=root,format=raw`,
      '-device', `virtio-blk-pci,drive=root,serial=${ROOT_SERIAL}`,
      ...standardDevices(dir),
    ],
  });
  const g = new Guest(vm, b);
  try {
    const t = Date.now();
    await vm.connect();
    await vm.guestReady(420000);
    b.readyMs = Date.now() - t;
    log(`boot ${n}: the agent answers ${b.readyMs} ms after QEMU started (${accel})`);
    await check(g);
  } catch (e) {
    g.fail(`error: ${(e as Error).message}`);
    const tail = readFileSync(vm.console, 'latin1').split('\n').slice(-40).join('\n');
    log(`boot ${n}: last console lines:\n${tail}`);
  }
  if (b.failures.length > 0) {
    // What the guest's journal says, for whoever reads the failure.
    for (const cmd of [`journalctl -b -u ${UNIT} -o short-monotonic --no-pager -n 60`, 'journalctl -b -p warning -o short-monotonic --no-pager -n 40']) {
      try {
        const r = await vm.run(cmd, 60000);
        log(`boot ${n}: ${cmd}:\n${r.output.join('\n')}`);
      } catch (e) {
        log(`boot ${n}: ${cmd}: ${(e as Error).message}`);
      }
    }
  }
  const t = Date.now();
  await vm.poweroff(180000);
  b.facts.poweroffMs = Date.now() - t;
  return b;
}

/** Checks of every boot: order, sandbox, journal priorities, coverage, udev, analyze. */
async function common(g: Guest, s: Setup): Promise<{ records: Rec[]; firstPid: number }> {
  const f = g.boot.facts;
  const enabled = (await g.run(`systemctl is-enabled ${UNIT}`)).output.join(' ');
  f.enabled = enabled;
  if (enabled !== 'enabled') g.fail(`${UNIT} is "${enabled}" after dpkg -i, not enabled`);
  const settleAt = Date.now();
  const settle = await g.run('hotplugd settle --timeout 300', 330000);
  f.settleMs = Date.now() - settleAt;
  if (settle.status !== 0) g.fail(`hotplugd settle exited ${settle.status}: ${settle.output.join(' | ')}`);

  // 1. active before sysinit.target
  const ours = Number(await g.prop(UNIT, 'ActiveEnterTimestampMonotonic'));
  const sysinit = Number(await g.prop('sysinit.target', 'ActiveEnterTimestampMonotonic'));
  f.activeEnterUs = { [UNIT]: ours, 'sysinit.target': sysinit };
  if (!(ours > 0 && sysinit > 0 && ours < sysinit)) g.fail(`order: ${UNIT} active at ${ours} µs, sysinit.target at ${sysinit} µs (monotonic): not before`);

  // 2. the sandbox, as the kernel sees it
  const pid = Number(await g.prop(UNIT, 'MainPID'));
  const status = await g.out(`cat /proc/${pid}/status`, 'the main process status');
  const field = (k: string): string | undefined => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(status)?.[1];
  f.sandbox = { pid, Seccomp: field('Seccomp'), NoNewPrivs: field('NoNewPrivs'), CapBnd: field('CapBnd'), CapEff: field('CapEff'), CapPrm: field('CapPrm') };
  if (field('Seccomp') !== '2') g.fail(`sandbox: Seccomp ${String(field('Seccomp'))}, expected 2 (a filter)`);
  if (field('NoNewPrivs') !== '1') g.fail(`sandbox: NoNewPrivs ${String(field('NoNewPrivs'))}, expected 1`);
  for (const k of ['CapBnd', 'CapEff', 'CapPrm']) if (field(k) !== CAPS) g.fail(`sandbox: ${k} ${String(field(k))}, expected ${CAPS} (CAP_SYS_MODULE CAP_NET_ADMIN)`);

  // 3. journal priorities: -p err is exactly the failed loads
  const records = await g.records();
  const errs = await g.run(`journalctl -b -u ${UNIT} -p err -o json --output-fields=MESSAGE,PRIORITY,_PID,SYSLOG_IDENTIFIER --no-pager`, 120000);
  const errEntries = parseRecords(errs.output);
  const errMessages = errEntries.map((e) => String(e.MESSAGE));
  const failed = records.filter((r) => r.msg === 'module' && r.result === 'failed');
  const failedLines = failed.map((r) => JSON.stringify(r));
  const errRecords = parseRecords(errMessages);
  const notFailedLoads = errMessages.filter((m) => {
    const r = parseRecords([m])[0];
    return r === undefined || r.msg !== 'module' || r.result !== 'failed';
  });
  const errLines = errRecords.filter((r) => r.msg === 'module' && r.result === 'failed').map((r) => JSON.stringify(r));
  const missingFromErr = failedLines.filter((l) => !errLines.includes(l));
  f.journal = {
    records: records.length,
    failedLoads: failed.map((r) => `${String(r.module)}:${String(r.code)}`),
    errEntries: errMessages.length,
    notFailedLoadsAtErr: notFailedLoads,
  };
  if (failed.length === 0) g.fail(`journal: no failed-load record at all (${BROKEN}.ko is missing on purpose)`);
  if (missingFromErr.length > 0) g.fail(`journal: failed loads not listed by journalctl -p err: ${missingFromErr.join(' ')}`);
  if (notFailedLoads.length > 0) g.fail(`journal: journalctl -p err lists entries that are not failed loads: ${notFailedLoads.join(' | ')}`);
  if (errLines.length !== failedLines.length) g.fail(`journal: ${errLines.length} failed loads at err, ${failedLines.length} failed-load records`);
  const brokenRec = failed.find((r) => r.module === BROKEN);
  if (brokenRec?.code !== 'ENOENT') g.fail(`journal: no failed record with ENOENT for ${BROKEN} (its .ko is missing on purpose)`);

  // 4. coverage: modprobe -R in the guest for every distinct MODALIAS
  const dump = await g.vm.dump();
  const answers = await g.out(
    `find /sys/devices -name uevent -type f -exec grep -h '^MODALIAS=' {} + 2>/dev/null | cut -d= -f2- | sort -u | while read -r a; do printf '%s\\t%s\\n' "$a" "$(modprobe -R "$a" 2>/dev/null | tr '\\n' ' ')"; done`,
    'modprobe -R of each modalias',
    300000,
  );
  const conf = await g.out('modprobe -c', 'modprobe -c');
  const exempt = new Set<string>();
  for (const l of conf.split('\n')) {
    const m = /^(blacklist|install) (\S+)/.exec(l);
    if (m) exempt.add(m[2]!.replace(/-/g, '_'));
  }
  const loaded = new Set(dump.modules);
  const moduleRecs = records.filter((r) => r.msg === 'module');
  const cov = coverage({ answers: answers.split('\n'), moduleRoot: s.moduleRoot, abi: s.abi, loaded, moduleRecs, broken: BROKEN, exempt });
  const firstPid = Number(records.find((r) => r.msg === 'listening')?.pid ?? -1);
  const byUs = new Set(moduleRecs.filter((r) => r.result === 'loaded').map((r) => r.module as string));
  const initramfs = new Set(s.initramfsModules);
  // Asked for and found loaded by the first daemon of this boot: who did it?
  const byOthers = [
    ...new Set(moduleRecs.filter((r) => r.pid === firstPid && r.result === 'already-loaded').map((r) => r.module as string)),
  ].filter((m) => !initramfs.has(m) && !byUs.has(m));
  f.coverage = {
    distinctModaliases: answers.split('\n').filter(Boolean).length,
    devices: new Set(dump.modaliases.map((m) => m.devpath)).size,
    expected: cov.expected.size,
    loaded: loaded.size,
    loadedByDaemon: byUs.size,
    initramfs: [...initramfs],
    declinedENODEV: [...cov.declined].sort(),
    missing: cov.missing,
    loadedByOthers: [...loaded].filter((m) => !byUs.has(m) && !initramfs.has(m)).sort(),
    alreadyLoadedWhenAsked: byOthers.sort(),
  };
  if (cov.expected.size === 0) g.fail('coverage: modprobe -R named no module for any modalias');
  if (cov.missing.length > 0) g.fail(`coverage: missing ${cov.missing.join(' ')}`);

  // 5. udev loads nothing
  const udevd = (await g.run('systemctl is-active systemd-udevd.service')).output.join(' ');
  const kmodRules = (await g.out(UDEV_KMOD_RULES, 'the udev rules check')).split('\n').filter(Boolean);
  const diverted = (await g.run('dpkg-divert --list | grep 80-drivers; ls -l /etc/udev/rules.d/ /run/udev/rules.d/ 2>/dev/null | grep 80-drivers')).output;
  f.udev = { udevd, kmodLoadRules: kmodRules, drivers80: diverted };
  if (udevd !== 'active') g.fail(`udev: systemd-udevd is "${udevd}": the guest must run udev for this check to mean anything`);
  if (kmodRules.length > 0) g.fail(`udev: rules in effect run "kmod load": ${kmodRules.join(' ')}`);
  const foreign = byOthers.filter((m) => !SYSTEMD_OWN.has(m));
  if (foreign.length > 0) g.fail(`udev: modules the daemon was asked for were already loaded by someone else: ${foreign.join(' ')}`);

  // 10. systemd-analyze, kept
  mkdirSync(OUT, { recursive: true });
  const analyze = [
    `# boot ${g.boot.n}: systemd-analyze time`,
    await g.out('systemd-analyze time', 'systemd-analyze time'),
    `\n# systemd-analyze critical-chain ${UNIT}`,
    await g.out(`systemd-analyze critical-chain --no-pager ${UNIT}`, 'systemd-analyze critical-chain'),
    '\n# systemd-analyze critical-chain (default target)',
    await g.out('systemd-analyze critical-chain --no-pager', 'systemd-analyze critical-chain'),
    '\n# systemd-analyze blame (first 25)',
    await g.out('systemd-analyze blame --no-pager | head -n 25', 'systemd-analyze blame'),
  ].join('\n');
  const file = join(OUT, `boot${g.boot.n}-critical-chain.txt`);
  // The command channel carries bytes as latin1: the tree's box-drawing characters are UTF-8.
  writeFileSync(file, Buffer.from(`${analyze}\n`, 'latin1'));
  f.analyze = { file, time: analyze.split('\n')[1] };
  log(`boot ${g.boot.n}: systemd-analyze output kept in ${file}`);
  return { records, firstPid };
}

async function firstBoot(g: Guest, s: Setup): Promise<void> {
  const f = g.boot.facts;
  const { records } = await common(g, s);
  f.indexKind = records.find((r) => r.msg === 'listening')?.kind;

  // 6. hotplug under the sandbox
  const addedAt = Date.now();
  await g.vm.qmpCall('device_add', { driver: 'rtl8139', id: 'hot0' });
  const hot = await g.until(60000, async () =>
    (await g.records()).find((r) => r.msg === 'module' && r.origin === 'uevent' && (r.module === '8139too' || r.module === '8139cp') && r.result === 'loaded'),
  );
  f.hotplug = hot ? { module: hot.module, devpath: hot.devpath, ms: hot.ms, seenAfterMs: Date.now() - addedAt } : null;
  if (!hot) g.fail('hotplug: no `loaded` record from a uevent for the rtl8139 NIC within 60 s of device_add');
  else if (!/^\/devices\/pci0000:00\/0000:00:[0-9a-f]{2}\.0$/.test(String(hot.devpath))) g.fail(`hotplug: unexpected devpath ${String(hot.devpath)}`);

  // 9 (first half). the index cache is written
  const cache = await g.until(120000, async () => {
    const r = await g.run('ls /var/cache/hotplugd/*.idx');
    return r.status === 0 ? r.output.join(' ') : undefined;
  });
  f.indexCache = cache ?? null;
  if (cache === undefined) g.fail('cache: no /var/cache/hotplugd/*.idx within 120 s of settling');

  // 7. SIGKILL, then Restart=on-failure walks /sys again
  const pid = Number(await g.prop(UNIT, 'MainPID'));
  const walksBefore = (await g.records()).filter((r) => r.msg === 'coldplug').length;
  await g.out(`systemctl kill -s KILL ${UNIT}`, 'systemctl kill');
  const killedAt = Date.now();
  const restarted = await g.until(120000, async () => {
    const now = Number(await g.prop(UNIT, 'MainPID'));
    const state = await g.prop(UNIT, 'ActiveState');
    return now > 0 && now !== pid && state === 'active' ? now : undefined;
  });
  const walk = restarted === undefined ? undefined : await g.until(120000, async () => (await g.records()).find((r) => r.msg === 'coldplug' && r.pid === restarted));
  f.restart = {
    killedPid: pid,
    newPid: restarted ?? null,
    nRestarts: await g.prop(UNIT, 'NRestarts'),
    walk: walk ? { why: walk.why, devices: walk.devices, ms: walk.ms } : null,
    walksBefore,
    ms: Date.now() - killedAt,
  };
  if (restarted === undefined) g.fail(`restart: ${UNIT} not active with a new main PID within 120 s of SIGKILL`);
  else if (!walk) g.fail(`restart: no coldplug record from the new daemon (PID ${restarted}): /sys was not walked again`);

  // 8. systemctl reload tells the truth
  const reloadsBefore = (await g.records()).filter((r) => r.msg === 'reloaded').length;
  // When systemctl returns: its status, the guest's clock (ms), the unit's state.
  const rl = await g.run(`systemctl reload ${UNIT}; echo "rc=$?"; echo "at=$(date +%s%3N)"; systemctl show -p ActiveState --value ${UNIT}`, 120000);
  const rc = /rc=(\d+)/.exec(rl.output.join('\n'))?.[1];
  const returnedAt = Number(/at=(\d+)/.exec(rl.output.join('\n'))?.[1]);
  const stateAfter = rl.output.at(-1);
  const reloaded = await g.until(60000, async () => {
    const recs = (await g.records()).filter((r) => r.msg === 'reloaded');
    return recs.length > reloadsBefore ? recs.at(-1) : undefined;
  });
  // The record is written once the new index is in place: a reload that returns when it is done returns after it.
  const recordAt = reloaded ? Date.parse(String(reloaded.time)) : NaN;
  f.reload = {
    exitStatus: rc === undefined ? null : Number(rc),
    stateWhenReturned: stateAfter,
    recordAfterReturnMs: recordAt - returnedAt,
    record: reloaded ? { kind: reloaded.kind, indexMs: reloaded.indexMs } : null,
  };
  if (rc !== '0') g.fail(`reload: systemctl reload exited ${String(rc)}: ${rl.output.join(' | ')}`);
  if (stateAfter !== 'active') g.fail(`reload: ${UNIT} was "${String(stateAfter)}" when systemctl reload returned (a reload must return when it is done)`);
  if (!reloaded) g.fail('reload: no `reloaded` record within 60 s');
  else if (!(recordAt <= returnedAt)) {
    g.fail(`reload: the reloaded record (${String(reloaded.time)}) came ${recordAt - returnedAt} ms after systemctl reload returned (a reload must return when it is done)`);
  }
}

async function secondBoot(g: Guest, s: Setup): Promise<void> {
  const { records } = await common(g, s);
  // 9 (second half). the cache written on boot 1 is read
  const listening = records.find((r) => r.msg === 'listening');
  g.boot.facts.indexKind = listening?.kind;
  if (listening?.kind !== 'cache') g.fail(`cache: the first listening record of boot 2 has kind ${String(listening?.kind)}, expected cache`);
}

async function main(): Promise<number> {
  const started = Date.now();
  mkdirSync(OUT, { recursive: true });
  // Work directories of earlier runs that died (a disk image each); a run still going keeps its own.
  for (const f of readdirSync(OUT)) {
    if (!f.startsWith('run-')) continue;
    const pidFile = join(OUT, f, 'pid');
    const owner = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    if (owner > 0 && existsSync(`/proc/${owner}`)) continue;
    rmSync(join(OUT, f), { recursive: true, force: true });
  }
  const pkgDir = join(ROOT, 'dist/package');
  const deb = existsSync(pkgDir) ? readdirSync(pkgDir).find((f) => f.endsWith('.deb')) : undefined;
  if (deb === undefined) throw new Error(`${pkgDir}: no .deb; run \`npm run package\` first (the guest installs what ships)`);
  const moduleRoot = sh(join(ROOT, 'scripts/fetch-kernel.sh'), []).trim();
  const abi = sh('ls', [join(moduleRoot, 'lib/modules')]).trim().split('\n')[0]!;
  const work = mkdtempSync(join(OUT, 'run-'));
  writeFileSync(join(work, 'pid'), String(process.pid));

  let t = Date.now();
  const base = baseRootfs(join(CACHE, 'guest'));
  const baseMs = Date.now() - t;
  t = Date.now();
  const disk = join(work, 'root.img');
  const dpkg = guestDisk({ base, deb: join(pkgDir, deb), moduleRoot, abi, remove: [REMOVED], agent: join(ROOT, 'e2e/agent.sh'), stage: join(work, 'stage'), out: disk });
  const diskMs = Date.now() - t;
  log(`disk image made in ${diskMs} ms; dpkg -i said:\n${dpkg.trim()}`);
  const initrd = join(work, 'initrd.cpio');
  const initramfsModules = buildRootInitramfs({ moduleRoot, abi, modules: ROOT_MODULES, rootSerial: ROOT_SERIAL, stage: join(work, 'initramfs'), out: initrd });
  const s: Setup = { moduleRoot, abi, work, disk, initrd, initramfsModules, kernel: join(moduleRoot, 'boot', `vmlinuz-${abi}`) };

  t = Date.now();
  const b1 = await boot(s, 1, (g) => firstBoot(g, s));
  const boot1Ms = Date.now() - t;
  t = Date.now();
  const b2 = await boot(s, 2, (g) => secondBoot(g, s));
  const boot2Ms = Date.now() - t;
  const failures = [...b1.failures, ...b2.failures];
  const summary = {
    kernel: abi,
    package: deb,
    timingsMs: { baseRootfs: baseMs, disk: diskMs, boot1: boot1Ms, boot2: boot2Ms, total: Date.now() - started },
    boots: [b1, b2].map((b) => ({ n: b.n, agentReadyMs: b.readyMs, ...b.facts })),
    failures,
  };
  writeFileSync(join(OUT, 'summary.json'), JSON.stringify(summary, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  for (const b of [b1, b2]) {
    const file = (b.facts.analyze as { file?: string } | undefined)?.file;
    if (file !== undefined) console.log(`systemd-analyze (boot ${b.n}): ${file}`);
  }
  console.log(`summary: ${join(OUT, 'summary.json')}`);
  console.log(failures.length === 0 ? 'e2e:systemd: all assertions hold' : `e2e:systemd: ${failures.length} assertion(s) failed:\n  ${failures.join('\n  ')}`);
  rmSync(work, { recursive: true, force: true });
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    log(`error: ${(e as Error).stack ?? String(e)}`);
    process.exitCode = 1;
  },
);
