/**
 * modprobe.d `install` commands: which module runs which command (checked
 * against kmod 30's modprobe --show-depends on a depmod'ed tree of gcc-made
 * modules), the queue running them in place of loads, and the real shell
 * runner's contract (environment, $CMDLINE_OPTS, time limit, output cap).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { emptyConfig, parseModprobeConf } from '../../src/core/config.js';
import { type ModuleIndex } from '../../src/core/index/module-index.js';
import { configuredInstallCommand, installCommandFor, substituteCmdlineOpts } from '../../src/core/install.js';
import { LoadQueue, type QueuePolicy } from '../../src/core/queue.js';
import { ShellCommandRunner } from '../../src/sys/install.js';
import { loadIndex } from '../../src/sys/indexfs.js';
import { DryRunKernel } from '../../src/sys/kernel.js';
import { FakeKernel, FakeRunner, recordingLog } from '../support/fakes.js';
import { FIXTURE_DIR } from '../support/helpers.js';

function confDir(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
  writeFileSync(join(dir, 'test.conf'), text);
  return dir;
}

function fixtureWith(conf: string): ModuleIndex {
  return loadIndex({ modulesDir: FIXTURE_DIR, configDirs: [confDir(conf)], cmdline: '' });
}

function setup(index: ModuleIndex, kernel: FakeKernel | DryRunKernel, policy: QueuePolicy) {
  const rec = recordingLog();
  const queue = new LoadQueue({ index, kernel, log: rec.log, modulesDir: '/lib/modules/test', ...policy });
  const loads = () => rec.records().filter((r) => r.msg === 'module');
  return { queue, loads };
}

const USB = 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00';

describe('install commands in the queue', () => {
  it('runs the command in place of loading the module, then loads its dependents as modprobe does', async () => {
    const kernel = new FakeKernel();
    const runner = new FakeRunner();
    const { queue, loads } = setup(fixtureWith('install usb-storage /bin/true\n'), kernel, { runner });
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-1', origin: 'uevent' });
    await queue.idle();
    // modprobe --show-depends: insmod usb-common, usbcore, scsi_common, scsi_mod; install /bin/true; insmod uas
    expect(kernel.calls.map((c) => c.name)).toEqual(['usb_common', 'usbcore', 'scsi_common', 'scsi_mod', 'uas']);
    expect(runner.runs).toEqual([{ module: 'usb_storage', command: '/bin/true', timeoutMs: 30_000 }]);
    expect(loads().find((r) => r.module === 'usb_storage')).toMatchObject({
      result: 'install-command',
      command: '/bin/true',
      exitCode: 0,
      dependencyOf: 'uas',
      devpath: '/devices/usb1/1-1',
      ms: expect.any(Number),
    });
  });

  it('runs a command once per module per index load; later devices get a record saying so', async () => {
    const runner = new FakeRunner();
    const { queue, loads } = setup(fixtureWith('install pcspkr /bin/true\n'), new FakeKernel(), { runner });
    for (const dev of ['/devices/a', '/devices/a', '/devices/b']) {
      queue.submit({ modalias: 'platform:pcspkr', devpath: dev, origin: 'uevent' });
      await queue.idle();
    }
    expect(runner.runs).toHaveLength(1);
    // Device a has its record (the command's); device b gets one saying why nothing loads.
    expect(loads().map((r) => [r.devpath, r.result, r.reason])).toEqual([
      ['/devices/a', 'install-command', undefined],
      ['/devices/b', 'skipped', 'install-command-ran'],
    ]);
  });

  it('treats a failing command as a failure for the modules that depend on it', async () => {
    const kernel = new FakeKernel();
    const runner = new FakeRunner({ usb_storage: 1 });
    const { queue, loads } = setup(fixtureWith('install usb_storage /bin/false\n'), kernel, { runner });
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-1', origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-2', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls.map((c) => c.name)).not.toContain('uas');
    expect(runner.runs).toHaveLength(1);
    const recs = loads().filter((r) => r.module === 'usb_storage' || r.module === 'uas');
    expect(recs.map((r) => [r.devpath, r.module, r.result, r.reason, r.code ?? r.failedDependency])).toEqual([
      ['/devices/usb1/1-1', 'usb_storage', 'install-command', undefined, 'E_INSTALL_STATUS'],
      ['/devices/usb1/1-1', 'uas', 'skipped', 'dependency-failed', 'usb_storage'],
      ['/devices/usb1/1-2', 'usb_storage', 'skipped', 'failed-before', 'E_INSTALL_STATUS'],
      ['/devices/usb1/1-2', 'uas', 'skipped', 'dependency-failed', 'usb_storage'],
    ]);
    expect(recs[0]).toMatchObject({ exitCode: 1 });
  });

  it('with --install-commands refuse never runs a command and never loads such a module', async () => {
    const kernel = new FakeKernel();
    const runner = new FakeRunner();
    const { queue, loads } = setup(fixtureWith('install usb-storage /bin/true\n'), kernel, { runner, installCommands: 'refuse' });
    queue.submit({ modalias: USB, origin: 'uevent' });
    await queue.idle();
    queue.submit({ modalias: USB, devpath: '/devices/usb1/1-2', origin: 'uevent' });
    await queue.idle();
    expect(loads().filter((r) => r.module === 'usb_storage').map((r) => r.reason)).toEqual(['install-command', 'install-command']);
    expect(runner.runs).toHaveLength(0);
    expect(kernel.calls.map((c) => c.name)).not.toContain('usb_storage');
    expect(loads().find((r) => r.module === 'usb_storage')).toMatchObject({ result: 'skipped', reason: 'install-command', command: '/bin/true' });
    expect(loads().find((r) => r.module === 'uas')).toMatchObject({ result: 'skipped', failedDependency: 'usb_storage' });
  });

  it('without a runner refuses too: a module with a command is never loaded behind the administrator\'s back', async () => {
    const kernel = new FakeKernel();
    const { queue, loads } = setup(fixtureWith('install pcspkr /bin/true\n'), kernel, {});
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(kernel.calls).toHaveLength(0);
    expect(loads()[0]).toMatchObject({ result: 'skipped', reason: 'install-command', runner: 'none' });
  });

  it('in dry-run reports "would-run" with the command and runs nothing', async () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
    const runner = new FakeRunner();
    const { queue, loads } = setup(fixtureWith('install pcspkr echo $CMDLINE_OPTS\noptions pcspkr debug=1\n'), new DryRunKernel({ sysfs, procfs: sysfs }), { runner });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    await queue.idle();
    expect(runner.runs).toHaveLength(0);
    expect(loads()).toEqual([expect.objectContaining({ module: 'pcspkr', result: 'would-run', command: 'echo debug=1', params: 'debug=1' })]);
  });

  it('does not run the command of a module the kernel has live or built in', async () => {
    const runner = new FakeRunner();
    const kernel = new FakeKernel({}, new Map([['pcspkr', 'live' as const]]));
    const { queue, loads } = setup(fixtureWith('install pcspkr /bin/true\ninstall debugfs /bin/true\n'), kernel, { runner });
    queue.submit({ modalias: 'platform:pcspkr', origin: 'uevent' });
    queue.submit({ modalias: 'fs-debugfs', origin: 'uevent' });
    await queue.idle();
    expect(runner.runs).toEqual([]);
    expect(loads().map((r) => [r.module, r.result])).toEqual([
      ['pcspkr', 'already-loaded'],
      ['debugfs', 'builtin'],
    ]);
  });

  it('normalizes install patterns as kmod does: dashes outside brackets, an unmatched bracket refused', () => {
    const cfg = emptyConfig();
    parseModprobeConf('install snd-[a-c]x /bin/true\ninstall bad] /bin/true\ninstall usb-storage\n', 'x.conf', cfg);
    expect([...cfg.commands.keys()]).toEqual(['snd_[a-c]x']);
    expect(cfg.warnings.map((w) => w.line)).toEqual([2, 3]);
  });

  it('does not warn about install and remove lines any more', () => {
    const cfg = emptyConfig();
    parseModprobeConf('install usb-storage /bin/true\nremove usb-storage /bin/true\n', 'x.conf', cfg);
    expect(cfg.warnings).toEqual([]);
  });
});

describe('which command runs, as libkmod decides', () => {
  it('substitutes every $CMDLINE_OPTS once, without re-scanning the options', () => {
    expect(substituteCmdlineOpts('a $CMDLINE_OPTS b $CMDLINE_OPTS', 'x=$CMDLINE_OPTS')).toBe('a x=$CMDLINE_OPTS b x=$CMDLINE_OPTS');
  });

  it('takes the first matching line, matches names with fnmatch, and keeps the command text verbatim', () => {
    const index = fixtureWith('install pcspk*  echo  "two  spaces"\ninstall pcspkr echo second\ninstall snd-[ab]* echo snd\n');
    expect(configuredInstallCommand(index, 'pcspkr')).toBe(' echo  "two  spaces"');
    expect(installCommandFor(index, 'snd_bt87x')).toBe('echo snd');
    expect(installCommandFor(index, 'snd_hda_intel')).toBeUndefined();
  });

  it('ignores the command of a module with softdeps (libkmod loads it, its softdeps stand in)', () => {
    const index = fixtureWith('install ext4 /bin/true\n');
    expect(configuredInstallCommand(index, 'ext4')).toBe('/bin/true');
    expect(installCommandFor(index, 'ext4')).toBeUndefined();
  });
});

/** A module object made by gcc with a .modinfo section, optionally exporting or using a symbol (depmod derives dependencies from symbols). */
function fakeModule(work: string, dir: string, name: string, code: string, modinfo: string[]): void {
  const src = join(work, `${name}.c`);
  const body = [...modinfo, `name=${name}`].map((r) => `${JSON.stringify(r)} "\\0"`).join(' ');
  writeFileSync(src, `${code}\n__attribute__((section(".modinfo"), used, aligned(1))) static const char modinfo[] = ${body};\n`);
  execFileSync('gcc', ['-c', '-o', join(dir, `${name}.ko`), src]);
}

const exportSym = (s: string): string =>
  `int ${s}(void){return 1;} __attribute__((section("__ksymtab_strings"),used)) static const char ks_${s}[] = "${s}"; int __ksymtab_${s} __attribute__((used));`;
const useSym = (s: string): string => `extern int ${s}(void); int use_${s}(void){return ${s}();}`;

describe('against kmod 30 modprobe --show-depends', () => {
  const KVER = '6.1.0-h5';
  let root: string;
  let moddir: string;
  let conf: string;
  beforeAll(() => {
    for (const tool of ['gcc', 'depmod', 'modprobe']) {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`]);
      } catch {
        throw new Error(`${tool} is not installed: this test needs it (kmod and gcc)`);
      }
    }
    const work = mkdtempSync(join(tmpdir(), 'hotplugd-kmod-'));
    root = join(work, 'root');
    moddir = join(root, 'lib/modules', KVER);
    const kdir = join(moddir, 'kernel');
    mkdirSync(kdir, { recursive: true });
    fakeModule(work, kdir, 'bot', exportSym('bot_fn'), []);
    fakeModule(work, kdir, 'mid', `${exportSym('mid_fn')} ${useSym('bot_fn')}`, []);
    fakeModule(work, kdir, 'top', useSym('mid_fn'), ['alias=dev:top*']);
    fakeModule(work, kdir, 'soft', useSym('bot_fn'), ['softdep=pre: solo']);
    fakeModule(work, kdir, 'solo', 'int solo_x;', []);
    execFileSync('depmod', ['-b', root, KVER], { stdio: 'ignore' });
    conf = confDir(
      [
        'install mid echo MID $CMDLINE_OPTS "$MODPROBE_MODULE"',
        'install soft echo SOFT',
        'install s* echo GLOB',
        'install solo echo SECOND',
        'install top echo TOP',
        'options mid m=1',
        'options top t=1',
        '',
      ].join('\n'),
    );
  });

  /** modprobe's lines vs ours: "insmod PATH [OPTS]" for a load, "install CMD OPTS" for a command. */
  async function both(name: string, extra: string[] = []): Promise<{ modprobe: string[]; ours: string[] }> {
    const out = execFileSync('modprobe', ['-d', root, '-S', KVER, '-C', conf, ...extra, '--show-depends', name], { encoding: 'utf8' });
    const modprobe = out.split('\n').filter((l) => l !== '').map((l) => l.trimEnd());
    const index = loadIndex({ modulesDir: moddir, configDirs: [conf], cmdline: '' });
    const sysfs = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
    const { queue, loads } = setup(index, new DryRunKernel({ sysfs, procfs: sysfs }), { runner: new FakeRunner() });
    const query = name.startsWith('dev:') ? { modalias: name, origin: 'uevent' as const } : { module: name, origin: 'request' as const };
    queue.submit(query);
    await queue.idle();
    const ours = loads().map((r) => {
      const opts = index.options(r.module as string);
      if (r.result === 'would-run') return `install ${configuredInstallCommand(index, r.module as string)!} ${opts}`.trimEnd();
      return `insmod ${join(moddir, (index.moduleByName(r.module as string)!.path)!)} ${opts}`.trimEnd();
    });
    return { modprobe, ours };
  }

  for (const name of ['top', 'dev:top1', 'soft', 'solo', 'mid', 'bot']) {
    it(`decides ${name} as modprobe does`, async () => {
      const { modprobe, ours } = await both(name);
      expect(ours).toEqual(modprobe);
      expect(modprobe.length).toBeGreaterThan(0);
    });
  }
});

describe('the /bin/sh runner', () => {
  const shell = new ShellCommandRunner({ outputCap: 64 });
  const runner = { run: (r: { module: string; command: string }) => shell.run({ ...r, timeoutMs: 300 }) };

  it('gives the command MODPROBE_MODULE, a minimal PATH, no stdin, and the module options in $CMDLINE_OPTS', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'hotplugd-run-')), 'out');
    const command = substituteCmdlineOpts(`echo "$MODPROBE_MODULE|$CMDLINE_OPTS|$PATH|$HOME" > ${out}; cat; echo "stdin=$?" >> ${out}`, 'debug=1 x=2');
    const o = await runner.run({ module: 'pcspkr', command });
    expect(o).toMatchObject({ exitCode: 0, signal: null, timedOut: false });
    expect(readFileSync(out, 'utf8')).toBe('pcspkr|debug=1 x=2|/usr/sbin:/usr/bin:/sbin:/bin|\nstdin=0\n');
  });

  it('reports a failing command with its exit status and captured output, cut at the cap', async () => {
    const o = await runner.run({ module: 'm', command: 'head -c 1000 /dev/zero | tr "\\0" x; echo oops >&2; exit 3' });
    expect(o.exitCode).toBe(3);
    expect(o.output).toHaveLength(64);
    expect(o.truncated).toBe(true);
  });

  it('counts a command killed by a signal as failed (libkmod would call it success)', async () => {
    const o = await runner.run({ module: 'm', command: 'kill -TERM $$' });
    expect(o).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('kills a command that hangs past the limit, with everything it started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-run-'));
    const o = await runner.run({ module: 'm', command: `sleep 30 & echo $! > ${dir}/pid; sleep 30` });
    expect(o).toMatchObject({ timedOut: true, exitCode: null });
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    // Gone, or a zombie waiting for whoever reaps orphans here (SIGKILL is delivered at once, the reaping may lag).
    const state = (): string => {
      try {
        return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
      } catch {
        return 'gone';
      }
    };
    for (let i = 0; i < 50 && !['gone', 'Z'].includes(state()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(['gone', 'Z']).toContain(state());
  });

  it('comes back with an error, not a throw, when the shell cannot start', async () => {
    const o = await new ShellCommandRunner({ shell: '/nonexistent/sh' }).run({ module: 'm', command: 'true', timeoutMs: 300 });
    expect(o.error).toBe('ENOENT');
  });
});
