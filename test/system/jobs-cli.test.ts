/** `coldplug --jobs` as a process, on a temporary sysfs tree: the same decisions as one job, and usage errors. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', ...args], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Devices whose drivers share dependencies (snd, virtio, usb-storage stacks). */
const MODALIASES = [
  'pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00',
  'virtio:d00000001v00001AF4',
  'virtio:d00000002v00001AF4',
  'usb:v13FDp3940d0150dc00dsc00dp00ic08isc06ip50in00',
  'platform:pcspkr',
  'pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00',
];

function sysfsTree(): string {
  const sys = mkdtempSync(join(tmpdir(), 'hotplugd-sys-'));
  MODALIASES.forEach((m, i) => {
    const dir = join(sys, 'devices', `dev${i}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'uevent'), `MODALIAS=${m}\n`);
  });
  mkdirSync(join(sys, 'module'));
  return sys;
}

describe('coldplug --jobs', () => {
  it('records the same decisions with --jobs 4 and auto as with --jobs 1', () => {
    const sys = sysfsTree();
    const common = ['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--sysfs', sys, '--procfs', sys, '--log-format', 'json'];
    const decisions = (out: string) =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l.replace(/^<\d>/, '')) as Record<string, unknown>)
        .filter((r) => r.msg === 'module')
        .map((r) => `${String(r.module)} ${String(r.result)}`)
        .sort();
    const one = cli([...common, '--jobs', '1']);
    expect(one.status).toBe(0);
    expect(decisions(one.stdout).length).toBeGreaterThan(10);
    for (const jobs of ['4', 'auto']) {
      const many = cli([...common, '--jobs', jobs]);
      expect(many.status).toBe(0);
      expect(decisions(many.stdout)).toEqual(decisions(one.stdout));
    }
  });

  for (const bad of ['0', '65', 'many']) {
    it(`rejects --jobs ${bad} with exit 100`, () => {
      const r = cli(['coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--cmdline', '', '--jobs', bad]);
      expect(r.status).toBe(100);
      expect(r.stderr).toMatch(/--jobs/);
    });
  }
});
