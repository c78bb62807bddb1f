/**
 * `hotplugd trigger` on fake sysfs trees (regular files stand in for the
 * uevent attributes): what is written where, --subsystem, --dry-run, hostile
 * entries reported without hanging, the command's output and exit codes.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HotplugError } from '../../../src/errors.js';
import { main } from '../../../src/main.js';
import { triggerDevices, writeUevent } from '../../../src/sys/trigger.js';

/** Devices as "devpath": subsystem (undefined: no subsystem link); uevent files empty. */
function fakeSysfs(devices: Record<string, string | undefined>): string {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-trigger-'));
  for (const [devpath, subsystem] of Object.entries(devices)) {
    const dir = join(root, 'devices', devpath);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'uevent'), '');
    if (subsystem !== undefined) {
      mkdirSync(join(root, 'bus', subsystem), { recursive: true });
      symlinkSync(join(root, 'bus', subsystem), join(dir, 'subsystem'));
    }
  }
  return root;
}

const TREE = {
  'pci0000:00/0000:00:01.0': 'pci',
  'pci0000:00/0000:00:01.0/usb1': 'usb',
  'pci0000:00/0000:00:01.0/usb1/1-1': 'usb',
  'platform/pcspkr': 'platform',
  'virtual/misc/fuse': 'misc',
  'system/cpu': undefined,
};

function contents(root: string, devpath: string): string {
  return readFileSync(join(root, 'devices', devpath, 'uevent'), 'utf8');
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await main(args, { stdout: out, stderr: err, stdin: new PassThrough() });
  return { code, stdout, stderr };
}

describe('triggerDevices', () => {
  it('writes the action to every device\'s uevent file, parents first', async () => {
    const root = fakeSysfs(TREE);
    const order: string[] = [];
    const r = await triggerDevices(root, { action: 'add', onDevice: (d) => order.push(d.file) });
    expect(r).toMatchObject({ devices: 6, written: 6, failed: [], unreadable: [] });
    for (const devpath of Object.keys(TREE)) expect(contents(root, devpath), devpath).toBe('add\n');
    expect(order.indexOf(join(root, 'devices/pci0000:00/0000:00:01.0/uevent'))).toBeLessThan(order.indexOf(join(root, 'devices/pci0000:00/0000:00:01.0/usb1/uevent')));
  });

  it('writes only to devices of the named subsystems, and "change" when asked', async () => {
    const root = fakeSysfs(TREE);
    const r = await triggerDevices(root, { action: 'change', subsystems: ['usb', 'platform'] });
    expect(r.written).toBe(3);
    expect(contents(root, 'pci0000:00/0000:00:01.0/usb1')).toBe('change\n');
    expect(contents(root, 'pci0000:00/0000:00:01.0/usb1/1-1')).toBe('change\n');
    expect(contents(root, 'platform/pcspkr')).toBe('change\n');
    expect(contents(root, 'pci0000:00/0000:00:01.0')).toBe('');
    expect(contents(root, 'system/cpu')).toBe('');
  });

  it('writes nothing in a dry run, and lists what it would write', async () => {
    const root = fakeSysfs(TREE);
    const files: string[] = [];
    const r = await triggerDevices(root, { action: 'add', dryRun: true, subsystems: ['pci'], onDevice: (d) => files.push(d.file) });
    expect(files).toEqual([join(root, 'devices/pci0000:00/0000:00:01.0/uevent')]);
    expect(r).toMatchObject({ devices: 1, written: 0 });
    for (const devpath of Object.keys(TREE)) expect(contents(root, devpath)).toBe('');
  });

  it('reports a FIFO, a directory or a symlink named uevent, and a symlink loop, without hanging and goes on', async () => {
    const root = fakeSysfs({ 'platform/pcspkr': 'platform' });
    const fifo = join(root, 'devices/platform/fifo');
    mkdirSync(fifo);
    execFileSync('mkfifo', [join(fifo, 'uevent')]);
    mkdirSync(join(root, 'devices/platform/dir/uevent'), { recursive: true });
    mkdirSync(join(root, 'devices/platform/link'));
    symlinkSync('/etc/hostname', join(root, 'devices/platform/link/uevent'));
    symlinkSync('..', join(root, 'devices/platform/loop'));
    const r = await triggerDevices(root, { action: 'add' });
    expect(r.written).toBe(1);
    expect(r.unreadable.map((e) => [e.path.slice(root.length), e.code]).sort()).toEqual([
      ['/devices/platform/dir/uevent', 'E_INPUT'],
      ['/devices/platform/fifo/uevent', 'E_INPUT'],
      ['/devices/platform/link/uevent', 'E_INPUT'],
    ]);
    expect(readFileSync('/etc/hostname', 'utf8')).not.toBe('add\n');
  });

  it('never waits on a FIFO or follows a symlink even when asked to write one directly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-trigger-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await expect(writeUevent(join(dir, 'fifo'), 'add')).rejects.toMatchObject({ code: 'ENXIO' }); // no reader: O_NONBLOCK fails at once
    // With a reader there, the open succeeds; fstat refuses it before a byte is written.
    const reader = openSync(join(dir, 'fifo'), constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      await expect(writeUevent(join(dir, 'fifo'), 'add')).rejects.toMatchObject({ code: 'E_INPUT' });
      expect(readSync(reader, Buffer.alloc(16))).toBe(0); // the writer has gone and wrote nothing
    } finally {
      closeSync(reader);
    }
    writeFileSync(join(dir, 'target'), 'keep');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    await expect(writeUevent(join(dir, 'link'), 'add')).rejects.toMatchObject({ code: 'ELOOP' });
    expect(readFileSync(join(dir, 'target'), 'utf8')).toBe('keep');
  });

  it('opens without O_TRUNC: a regular uevent that is not sysfs\' keeps its contents past the action', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-trigger-'));
    writeFileSync(join(dir, 'uevent'), 'DRIVER=longer contents\n');
    await writeUevent(join(dir, 'uevent'), 'add');
    expect(readFileSync(join(dir, 'uevent'), 'utf8')).toBe('add\nER=longer contents\n');
    // A device directory swapped for a symlink after the walk: the write goes
    // through it (only the last component is O_NOFOLLOW) but empties nothing.
    const root = fakeSysfs(TREE);
    const elsewhere = mkdtempSync(join(tmpdir(), 'hotplugd-elsewhere-'));
    writeFileSync(join(elsewhere, 'uevent'), 'precious data\n');
    const r = await triggerDevices(root, {
      action: 'add',
      onDevice: (d) => {
        if (!d.file.endsWith('0000:00:01.0/uevent')) return;
        const victim = join(root, 'devices/platform/pcspkr');
        execFileSync('rm', ['-r', victim]);
        symlinkSync(elsewhere, victim);
      },
    });
    expect(r.written).toBe(6);
    expect(readFileSync(join(elsewhere, 'uevent'), 'utf8')).toBe('add\nious data\n');
  });

  it('counts a failed write with its errno and goes on', async () => {
    const root = fakeSysfs(TREE);
    // A directory where the file should be, after the walk saw a file: EISDIR on open.
    const r = await triggerDevices(root, {
      action: 'add',
      onDevice: (d) => {
        if (d.file.endsWith('pcspkr/uevent') || d.code !== undefined) return;
        if (d.file.endsWith('usb1/1-1/uevent')) {
          const victim = join(root, 'devices/platform/pcspkr/uevent');
          execFileSync('rm', [victim]);
          mkdirSync(victim);
        }
      },
    });
    expect(r.written).toBe(5);
    expect(r.failed).toEqual([{ file: join(root, 'devices/platform/pcspkr/uevent'), code: 'EISDIR' }]);
  });

  it('stops with E_SYSTEM when SYSFS/devices cannot be listed', async () => {
    const e = await triggerDevices('/nonexistent', { action: 'add' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HotplugError);
    expect((e as HotplugError).code).toBe('E_SYSTEM');
    expect((e as HotplugError).message).toBe('/nonexistent/devices: cannot list the devices (ENOENT)');
  });

  // A refused first write (EACCES as a user) is tested as a real user in
  // test/system/trigger.test.ts: this machine's tests run as root.
});

describe('hotplugd trigger', () => {
  it('prints a summary by default and one path per device with --verbose', async () => {
    const root = fakeSysfs(TREE);
    const quiet = await cli(['trigger', '--sysfs', root]);
    expect(quiet).toEqual({ code: 0, stdout: 'trigger: "add" written to 6 uevent files\n', stderr: '' });
    const verbose = await cli(['trigger', '--sysfs', root, '--subsystem', 'usb', '-v']);
    expect(verbose.code).toBe(0);
    expect(verbose.stdout.split('\n').filter(Boolean)).toEqual([
      join(root, 'devices/pci0000:00/0000:00:01.0/usb1/uevent'),
      join(root, 'devices/pci0000:00/0000:00:01.0/usb1/1-1/uevent'),
    ]);
    expect(verbose.stderr).toBe('trigger: "add" written to 2 uevent files\n');
  });

  it('--dry-run prints the paths and writes nothing', async () => {
    const root = fakeSysfs(TREE);
    const r = await cli(['trigger', '--sysfs', root, '--dry-run', '--subsystem', 'platform', '--subsystem', 'misc']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(root, 'devices/platform/pcspkr/uevent')}\n${join(root, 'devices/virtual/misc/fuse/uevent')}\n`);
    expect(r.stderr).toBe('trigger: would write "add" to 2 uevent files (dry run)\n');
    for (const devpath of Object.keys(TREE)) expect(contents(root, devpath)).toBe('');
  });

  it('names the entries it could not walk in its summary, and still exits 0', async () => {
    const root = fakeSysfs({ 'platform/a': 'platform' });
    mkdirSync(join(root, 'devices/platform/b/uevent'), { recursive: true });
    const r = await cli(['trigger', '--sysfs', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`trigger: "add" written to 1 uevent file; 1 entry not walked (first: ${join(root, 'devices/platform/b/uevent')} E_INPUT)\n`);
  });

  it('refuses unknown flags, actions and subsystem names with exit 100', async () => {
    expect((await cli(['trigger', '--timeout', '5'])).code).toBe(100); // --timeout and --control go with --settle
    expect((await cli(['trigger', '--settle', '--timeout', 'soon'])).code).toBe(100);
    expect((await cli(['trigger', '--frobnicate'])).code).toBe(100);
    expect(await cli(['trigger', '--action', 'remove'])).toMatchObject({ code: 100, stderr: 'hotplugd: --action must be one of add, change (got "remove"); see "hotplugd trigger --help" [E_USAGE]\n' });
    expect((await cli(['trigger', '--subsystem', '../pci'])).code).toBe(100);
    expect((await cli(['trigger', 'extra'])).code).toBe(100);
  });

  it('has --help', async () => {
    const r = await cli(['trigger', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: hotplugd trigger /);
  });
});
