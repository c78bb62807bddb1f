/**
 * Install commands as real processes: a command that SIGKILL cannot end
 * (a process in uninterruptible sleep: it stats a path on a FUSE mount whose
 * server never answers, see support/fuse-hang.c) gets its record within
 * --install-timeout plus the grace and the next device is served; settle,
 * status and metrics name and count it; background jobs outlive the shell as
 * under modprobe's system(3), without delaying the record or keeping
 * descriptors open in the daemon.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { INSTALL_GRACE_MS } from '../../src/core/install.js';
import { ShellCommandRunner } from '../../src/sys/install.js';
import { cli, daemons, killDaemons, tmp } from '../support/control-helpers.js';
import { startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** This process's open descriptors. */
const fds = (): string[] => readdirSync('/proc/self/fd');

describe('background jobs of an install command (as under system(3))', () => {
  const runner = new ShellCommandRunner();

  it('live on after the shell exits: the file a job writes later appears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bg-'));
    const o = await runner.run({ module: 'm', command: `/bin/true; (sleep 1; touch ${dir}/F) &`, timeoutMs: 30_000 });
    expect(o).toMatchObject({ exitCode: 0, timedOut: false });
    expect(existsSync(join(dir, 'F'))).toBe(false); // the outcome did not wait for the job
    await until('the background job\'s file', () => existsSync(join(dir, 'F')));
  });

  it('holding the output pipes open neither delays the outcome nor keeps descriptors open here', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bg-'));
    const before = fds().length;
    const started = performance.now();
    const o = await runner.run({ module: 'm', command: `echo before; (sleep 3; echo late; touch ${dir}/F) & echo $! > ${dir}/pid`, timeoutMs: 30_000 });
    const ms = performance.now() - started;
    expect(o).toMatchObject({ exitCode: 0, output: 'before\n' });
    expect(ms).toBeLessThan(2000); // the job sleeps 3 s with the pipes open
    const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^State:\s+[SR]/m); // still running (not killed: no zombie)...
    expect(fds().length).toBe(before); // ...and no pipe of it is open in this process
  });
});

describe('an install command that SIGKILL cannot end', () => {
  let fuseHang: string | undefined;
  let why = '';
  beforeAll(() => {
    if (process.getuid?.() !== 0) why = 'needs root (a FUSE mount in a private mount namespace)';
    else if (!existsSync('/dev/fuse')) why = '/dev/fuse is absent';
    else if (spawnSync('unshare', ['-m', 'true']).status !== 0) why = 'unshare -m fails here';
    if (why !== '') {
      console.warn(`skipped: the stuck install command test ${why}`);
      return;
    }
    const out = mkdtempSync(join(tmpdir(), 'hotplugd-fuse-'));
    fuseHang = join(out, 'fuse-hang');
    execFileSync('gcc', ['-O1', '-o', fuseHang, new URL('../support/fuse-hang.c', import.meta.url).pathname]);
  });
  afterEach(killDaemons);

  it('gets its record within --install-timeout plus the grace; the next device is served; settle, status and metrics name it', async (t) => {
    if (fuseHang === undefined) return t.skip(why);
    const root = tmp();
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    // Two devices: pcspkr's command hangs in the kernel; virtio_ring's (the next device's first module) runs after it.
    for (const [dev, alias] of [['a', 'platform:pcspkr'], ['b', 'virtio:d00000001v00001AF4']]) {
      mkdirSync(join(root, 'sys/devices', dev!), { recursive: true });
      writeFileSync(join(root, 'sys/devices', dev!, 'uevent'), `MODALIAS=${alias}\n`);
    }
    mkdirSync(join(root, 'conf'));
    writeFileSync(join(root, 'conf/t.conf'), `install pcspkr exec stat ${mnt}/x\ninstall virtio_ring /bin/true\n`);
    // A procfs with a modules file (--mode load runs commands; this kernel has no module support): /proc otherwise.
    mkdirSync(join(root, 'proc'));
    for (const e of readdirSync('/proc')) if (e !== 'modules') symlinkSync(join('/proc', e), join(root, 'proc', e));
    writeFileSync(join(root, 'proc/modules'), '');
    const sock = join(root, 'control');
    const args = ['--modules-dir', FIXTURE_DIR, '--config-dir', join(root, 'conf'), '--cmdline', '', '--sysfs', join(root, 'sys'), '--procfs', join(root, 'proc')];
    const d = startDaemon([...args, '--mode', 'load', '--control', sock, '--install-timeout', '1'], {}, {}, [
      'unshare', '-m', '--propagation', 'private', 'sh', '-c', `${fuseHang} ${mnt} > ${root}/server && exec "$0" "$@"`,
    ]);
    daemons.push(d);
    try {
      const stuck = await d.waitFor((r) => r.module === 'pcspkr', 1000 + INSTALL_GRACE_MS + 5000, 'the stuck command\'s record');
      expect(stuck).toMatchObject({ result: 'failed', code: 'E_INSTALL_STUCK', installTimeoutMs: 1000, command: `exec stat ${mnt}/x` });
      expect(stuck.ms as number).toBeGreaterThanOrEqual(1000 + INSTALL_GRACE_MS);
      expect(stuck.ms as number).toBeLessThan(1000 + INSTALL_GRACE_MS + 1000);
      // The shell is still there, in uninterruptible sleep, killed but not dead.
      const pid = Number(execFileSync('pgrep', ['-f', `^stat ${mnt}/x`], { encoding: 'utf8' }).split('\n')[0]);
      expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^State:\s+D/m);
      // The next device was served.
      await d.waitFor((r) => r.module === 'virtio_ring' && r.result === 'install-command', 5000, 'the next device\'s command');
      await d.waitFor((r) => r.msg === 'settled', 5000, 'settled');
      const settle = await cli(['settle', '--control', sock, '--timeout', '2']);
      expect(settle.status).toBe(0);
      expect(settle.stderr).toContain('still running: pcspkr');
      const status = JSON.parse((await cli(['status', '--control', sock, '--json'])).stdout) as { queue: { stuck: string[] }; counts: { installStuck: number } };
      expect(status.queue.stuck).toEqual(['pcspkr']);
      expect(status.counts.installStuck).toBe(1);
      const metrics = (await cli(['metrics', '--control', sock])).stdout;
      expect(metrics).toMatch(/^hotplugd_loads_stuck 1$/m);
      expect(metrics).toMatch(/^hotplugd_module_load_failures_total\{code="E_INSTALL_STUCK"\} 1$/m);
      // The server goes away: the request fails, the killed shell dies, the daemon says so and nothing is stuck any more.
      process.kill(Number(readFileSync(join(root, 'server'), 'utf8')), 'SIGTERM');
      await d.waitFor((r) => r.msg === 'install command left behind has ended', 5000, 'the end of the stuck command');
      const after = JSON.parse((await cli(['status', '--control', sock, '--json'])).stdout) as { queue: { stuck: string[] } };
      expect(after.queue.stuck).toEqual([]);
    } finally {
      try {
        process.kill(Number(readFileSync(join(root, 'server'), 'utf8')), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }, 30_000);
});
