import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

const FIX = ['--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', ...args], { encoding: 'utf8', input });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('hotplugd CLI', () => {
  it('says every usage error in one shape: what is wrong, the closest flag or command, the --help to read, [E_USAGE], exit 100', () => {
    const cases: [string[], string][] = [
      [['stauts'], 'hotplugd: unknown command "stauts" (did you mean status?); see "hotplugd --help" [E_USAGE]\n'],
      [['match', '--modules-dri', '/x', 'pci:v1'], 'hotplugd: unknown flag --modules-dri (did you mean --modules-dir?); see "hotplugd match --help" [E_USAGE]\n'],
      [['match', '--frobnicate', 'pci:v1'], 'hotplugd: unknown flag --frobnicate; see "hotplugd match --help" [E_USAGE]\n'],
      [['settle', '--timeout', '-1'], 'hotplugd: --timeout needs a value; for one that starts with "-", write --timeout=-VALUE; see "hotplugd settle --help" [E_USAGE]\n'],
      [['status', '--json=yes'], 'hotplugd: --json takes no value; see "hotplugd status --help" [E_USAGE]\n'],
      [['status', 'extra'], 'hotplugd: unexpected argument "extra"; see "hotplugd status --help" [E_USAGE]\n'],
      [['match'], 'hotplugd: give at least one MODALIAS, or --stdin; see "hotplugd match --help" [E_USAGE]\n'],
      [['why'], 'hotplugd: give one DEVPATH, MODALIAS or MODULE; see "hotplugd why --help" [E_USAGE]\n'],
      [['mat\x1b[2Jch'], 'hotplugd: unknown command "mat\\x1b[2Jch"; see "hotplugd --help" [E_USAGE]\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = cli(args);
      expect({ args, stderr: r.stderr, status: r.status }).toEqual({ args, stderr, status: 100 });
    }
  });

  it('says a module directory that does not exist is missing, not that depmod should run there', () => {
    const r = cli(['match', '--modules-dir', '/nonexistent/modules', '--config-dir', '', '--cmdline', '', 'pci:v1']);
    expect(r.status).toBe(111);
    expect(r.stderr).toBe('hotplugd: /nonexistent/modules: no such module directory; pass --modules-dir or --meta [E_INDEX_MISSING]\n');
  });

  it('does not suggest "run --demo" to a run --demo that was pointed at a directory without an index', () => {
    const empty = mkdtempSync(join(tmpdir(), 'hotplugd-noindex-'));
    const r = spawnSync(process.execPath, ['dist/src/cli.js', 'run', '--demo', '--modules-dir', empty, '--control', ''], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(111);
    expect(r.stderr).toContain(`hotplugd: ${empty}: no depmod index here`);
    // (On a kernel without module support the line goes on to say so; only "run --demo" itself is not suggested.)
    expect(r.stderr).not.toContain('--demo');
  });

  it('prints the modules for a modalias one per line, as modprobe -R does, and exits 0', () => {
    const r = cli(['match', ...FIX, 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00']);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['uas', 'usb_storage']);
  });

  it('exits 1 when nothing matches', () => {
    const r = cli(['match', ...FIX, 'nothing:matches:this']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^hotplugd: module nothing:matches:this not found in directory \/.*debian-6\.1\.0-56-amd64\n$/);
  });

  it('answers --stdin with one "query<TAB>modules" line per query', () => {
    const r = cli(['match', ...FIX, '--stdin'], 'virtio:d00000001v00001AF4\nnothing\n\n');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('virtio:d00000001v00001AF4\tvirtio_net\nnothing\t\n\t\n');
  });

  it('gives the dependency load order and flags with --json', () => {
    const r = cli(['match', ...FIX, '--json', 'pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00']);
    const j = JSON.parse(r.stdout) as { modules: { name: string; loadOrder: string[]; builtin: boolean }[] };
    const hda = j.modules.find((m) => m.name === 'snd_hda_intel')!;
    expect(hda.loadOrder.at(-1)).toBe('snd_hda_intel');
    expect(hda.loadOrder.indexOf('snd')).toBeLessThan(hda.loadOrder.indexOf('snd_pcm'));
    expect(hda.builtin).toBe(false);
  });

  it('reports a missing index in one line naming the directory, exit 111, no stack trace', () => {
    const empty = mkdtempSync(join(tmpdir(), 'hotplugd-noindex-'));
    const r = cli(['match', '--modules-dir', empty, '--cmdline', '', 'x']);
    expect(r.status).toBe(111);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${empty}: no depmod index here`);
    expect(r.stderr).not.toMatch(/at .*\.js/);
  });

  it('reports a corrupt meta.pb in one line with its code', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'hotplugd-')), 'meta.pb');
    writeFileSync(f, Buffer.from([0x0a, 0xff, 0xff, 0x03, 0x01]));
    const r = cli(['match', '--meta', f, '--modules-dir', '/x', '--cmdline', '', 'x']);
    expect(r.status).toBe(111);
    expect(r.stderr).toMatch(/meta\.pb: .*\[E_INDEX_CORRUPT\]/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('rejects a bad flag or command with exit 100', () => {
    expect(cli(['match', '--no-such-flag', 'x']).status).toBe(100);
    expect(cli(['frobnicate']).status).toBe(100);
    expect(cli(['match']).status).toBe(100);
  });

  it('has --help on every command', () => {
    for (const cmd of ['match', 'build-meta', 'run', 'coldplug', 'trigger', 'status', 'settle', 'monitor', 'why', 'reload', 'metrics']) {
      const r = cli([cmd, '--help']);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/^Usage: hotplugd /);
    }
    expect(cli(['--help']).stdout).toMatch(/Commands:/);
  });

  it('shows in match --json the options a module gets through the alias it was found by', () => {
    const conf = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
    writeFileSync(join(conf, 'mouse.conf'), 'alias my-mouse psmouse\noptions my-mouse rate=60\noptions psmouse resolution=200\n');
    const r = cli(['match', '--modules-dir', FIXTURE_DIR, '--cmdline', '', '--config-dir', conf, '--json', 'my-mouse']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { modules: { name: string; options: string }[] };
    // modprobe -n -v my-mouse: "insmod .../psmouse.ko rate=60 resolution=200" (kmod joins in file order)
    expect(out.modules).toEqual([expect.objectContaining({ name: 'psmouse', options: 'rate=60 resolution=200' })]);
  });

  it('prints its version, the same as package.json says', async () => {
    const { readFileSync } = await import('node:fs');
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`hotplugd ${version}\n`);
    expect(cli(['--help']).stdout).toContain(`hotplugd ${version}`);
  });

  it('queues nothing for a name modules.builtin.modinfo lists only for its parameters, also as a softdep, whatever the command line sets for it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-params-'));
    for (const [d, modalias] of [['a', 'platform:pcspkr'], ['b', 'apparmor'], ['c', 'random']]) {
      mkdirSync(join(dir, 'sys/devices', d!), { recursive: true });
      writeFileSync(join(dir, 'sys/devices', d!, 'uevent'), `MODALIAS=${modalias}\n`);
    }
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf/soft.conf'), 'softdep pcspkr pre: apparmor random post: fs-debugfs debugfs sysrq\n');
    const decisions = (cmdline: string): string[] => {
      writeFileSync(join(dir, 'cmdline'), cmdline);
      const r = cli(['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', join(dir, 'conf'), '--cmdline', join(dir, 'cmdline'), '--cache-dir', '', '--sysfs', join(dir, 'sys'), '--log-format', 'json']);
      expect(r.status).toBe(0);
      return r.stdout
        .split('\n')
        .filter((l) => l.includes('"msg":"module"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .map((rec) => `${String(rec.devpath)} ${String(rec.module)} ${String(rec.result)}`);
    };
    // modprobe --show-depends pcspkr with that softdep: insmod pcspkr, builtin debugfs (by its alias fs-debugfs); apparmor, random: not found.
    const plain = decisions('quiet\n');
    expect(plain).toEqual(['/devices/a pcspkr would-load', '/devices/a debugfs builtin']);
    expect(decisions('random.trust_cpu=1 apparmor.enabled=0 sysrq.x=1 quiet\n')).toEqual(plain);
  });

  it('coldplug exits 1 when a load failed, 0 when every load would succeed', () => {
    const sysfs = mkdtempSync(join(tmpdir(), 'hotplugd-sysfs-'));
    const dev = join(sysfs, 'devices/platform/pcspkr');
    mkdirSync(dev, { recursive: true });
    writeFileSync(join(dev, 'uevent'), 'MODALIAS=platform:pcspkr\n');
    expect(cli(['coldplug', '--dry-run', ...FIX, '--sysfs', sysfs, '--log-format', 'json']).status).toBe(0);
    // An alias naming a module that modules.dep does not list: no file to load, a failed record.
    const mods = mkdtempSync(join(tmpdir(), 'hotplugd-mods-'));
    writeFileSync(join(mods, 'modules.dep'), 'kernel/drivers/other.ko:\n');
    writeFileSync(join(mods, 'modules.alias'), 'alias platform:pcspkr pcspkr\n');
    const r = cli(['coldplug', '--dry-run', '--modules-dir', mods, '--config-dir', '', '--cmdline', '', '--sysfs', sysfs, '--log-format', 'json']);
    expect(r.stdout).toMatch(/"module":"pcspkr".*"result":"failed"/);
    expect(r.status).toBe(1);
  });
});

describe('index choice', () => {
  it('prefers the module directory meta.pb unless depmod ran after it was written', async () => {
    const { cpSync, utimesSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-idx-'));
    for (const f of ['modules.dep', 'modules.alias']) cpSync(join(FIXTURE_DIR, f), join(dir, f));
    const built = cli(['build-meta', '--from-depmod', dir, '-o', join(dir, 'meta.pb')]);
    expect(built.status).toBe(0);
    // A meta.pb that says something else, to see which index answers.
    const other = mkdtempSync(join(tmpdir(), 'hotplugd-idx-'));
    writeFileSync(join(other, 'modules.dep'), 'kernel/x/only_in_meta.ko:\n');
    writeFileSync(join(other, 'modules.alias'), 'alias virtio:d00000001v00001AF4 only_in_meta\n');
    expect(cli(['build-meta', '--from-depmod', other, '-o', join(dir, 'meta.pb')]).status).toBe(0);
    const args = ['match', '--modules-dir', dir, '--cmdline', '', '--config-dir', '', 'virtio:d00000001v00001AF4'];
    const old = new Date(Date.now() - 3600_000);
    utimesSync(join(dir, 'modules.dep'), old, old);
    expect(cli(args).stdout).toBe('only_in_meta\n');
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, 'modules.dep'), later, later); // depmod ran after meta.pb was written: stale
    expect(cli(args).stdout).toBe('virtio_net\n');
  });

  it("answers from depmod's files, with one warning line, when the module directory's meta.pb is truncated", async () => {
    const { cpSync, truncateSync, statSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-idx-'));
    for (const f of ['modules.dep', 'modules.alias']) cpSync(join(FIXTURE_DIR, f), join(dir, f));
    expect(cli(['build-meta', '--from-depmod', dir, '-o', join(dir, 'meta.pb')]).status).toBe(0);
    truncateSync(join(dir, 'meta.pb'), Math.floor(statSync(join(dir, 'meta.pb')).size / 2)); // as after ENOSPC, newer than modules.dep
    const r = cli(['match', '--modules-dir', dir, '--cmdline', '', '--config-dir', '', 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('ahci\n');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/meta\.pb: .*depmod's files read instead: truncated meta\.pb \[E_INDEX_CORRUPT\]/);
  });
});
