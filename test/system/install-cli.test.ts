/** install commands through the CLI: match --json, coldplug's flags, on temporary trees only. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function confDir(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-conf-'));
  writeFileSync(join(dir, 'test.conf'), text);
  return dir;
}

/** A sysfs tree with one device whose modalias is platform:pcspkr. */
function sysfsTree(): string {
  const sys = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
  mkdirSync(join(sys, 'devices/platform/pcspkr'), { recursive: true });
  writeFileSync(join(sys, 'devices/platform/pcspkr/uevent'), 'DRIVER=\nMODALIAS=platform:pcspkr\n');
  mkdirSync(join(sys, 'module'));
  return sys;
}

const USB = 'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00';

describe('install commands on the command line', () => {
  it('match --json shows the command for each module of the load order that has one, and no warning', () => {
    const conf = confDir('install usb-storage /bin/true $CMDLINE_OPTS\noptions usb-storage quirks=1\nremove usb-storage /bin/true\n');
    const r = cli(['match', '--modules-dir', FIXTURE_DIR, '--config-dir', conf, '--cmdline', '', '--json', USB]);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout) as { modules: { name: string; installCommands?: Record<string, string> }[] };
    expect(j.modules.find((m) => m.name === 'uas')!.installCommands).toEqual({ usb_storage: '/bin/true quirks=1' });
    expect(j.modules.find((m) => m.name === 'usb_storage')!.installCommands).toEqual({ usb_storage: '/bin/true quirks=1' });
  });

  it('coldplug --dry-run reports the command once per device, even when the modalias matches two modules needing it', () => {
    const sys = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
    mkdirSync(join(sys, 'devices/usb1/1-1:1.0'), { recursive: true });
    writeFileSync(join(sys, 'devices/usb1/1-1:1.0/uevent'), `MODALIAS=${USB}\n`);
    const conf = confDir('install usb-storage /bin/true\n');
    const r = cli(['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', conf, '--cmdline', '', '--sysfs', sys, '--procfs', sys, '--log-format', 'json']);
    const recs = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x.msg === 'module');
    expect(recs.map((x) => `${String(x.module)}:${String(x.result)}`)).toEqual([
      'usb_common:would-load',
      'usbcore:would-load',
      'scsi_common:would-load',
      'scsi_mod:would-load',
      'usb_storage:would-run',
      'uas:would-load',
    ]);
  });

  it('coldplug --dry-run reports the command as "would-run"; --install-commands refuse skips the module', () => {
    const sys = sysfsTree();
    const conf = confDir('install pcspkr /bin/true\n');
    const common = ['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', conf, '--cmdline', '', '--sysfs', sys, '--procfs', sys, '--log-format', 'json'];
    const records = (out: string) => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((x) => x.module === 'pcspkr');
    const run = cli(common);
    expect(run.status).toBe(0);
    expect(records(run.stdout)).toEqual([expect.objectContaining({ result: 'would-run', command: '/bin/true', devpath: '/devices/platform/pcspkr' })]);
    const refuse = cli([...common, '--install-commands', 'refuse']);
    expect(refuse.status).toBe(0);
    expect(records(refuse.stdout)).toEqual([expect.objectContaining({ result: 'skipped', reason: 'install-command' })]);
  });

  for (const bad of [['--install-commands', 'maybe'], ['--load-timeout', '0'], ['--install-timeout', 'soon']]) {
    it(`rejects ${bad.join(' ')} with exit 100`, () => {
      const r = cli(['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--cmdline', '', ...bad]);
      expect(r.status).toBe(100);
      expect(r.stderr).toMatch(new RegExp(bad[0]!));
    });
  }
});
