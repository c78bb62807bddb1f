/**
 * `hotplugd run --metrics-listen`: the real daemon (dry-run, the shipped
 * Debian index, a fake sysfs tree; the real uevent socket is opened, nothing
 * is written to the host's /sys) scraped over HTTP like Prometheus does.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killLeftover, type Rec, type Running, startDaemon } from '../support/daemon-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

const INDEX = ['--mode', 'dry-run', '--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', ''];

let daemon: Running | undefined;
afterEach(async () => {
  await killLeftover(daemon);
  daemon = undefined;
});

/** Devices whose drivers the Debian index has (pcspkr, virtio, snd-hda), one with a MODALIAS nothing serves. */
function fakeSysfs(): string {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-sysfs-'));
  const devices: Record<string, string> = {
    'platform/pcspkr': 'platform:pcspkr',
    'pci0000:00/0000:00:03.0/virtio0': 'virtio:d00000001v00001AF4',
    'pci0000:00/0000:00:04.0/virtio1': 'virtio:d00000002v00001AF4',
    'pci0000:00/0000:00:1b.0': 'pci:v00008086d0000293Esv00001AF4sd00001100bc04sc03i00',
    'platform/nothing': 'platform:no-such-driver',
  };
  for (const [dir, modalias] of Object.entries(devices)) {
    mkdirSync(join(root, 'devices', dir), { recursive: true });
    writeFileSync(join(root, 'devices', dir, 'uevent'), `MODALIAS=${modalias}\n`);
  }
  return root;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** `hotplugd run` to its exit, with no control socket (the default one may belong to a daemon running on this machine). */
function runSync(args: string[]): { status: number | null; signal: string | null; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/src/cli.js', 'run', '--log-format', 'json', '--control', '', ...args], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

describe('hotplugd run --metrics-listen', () => {
  it('serves /metrics whose load counts match the records the daemon wrote', async () => {
    daemon = startDaemon([...INDEX, '--sysfs', fakeSysfs(), '--metrics-listen', '127.0.0.1:0']);
    const listening = await daemon.waitFor((r) => r.msg === 'metrics endpoint listening', 20_000, 'the metrics record');
    await daemon.waitFor((r) => r.msg === 'settled', 20_000, 'settled');
    const r = await fetch(listening.url as string);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await r.text();
    const modules = daemon.records.filter((x: Rec) => x.msg === 'module');
    expect(modules.length).toBeGreaterThan(3);
    const byResult = new Map<string, number>();
    for (const m of modules) byResult.set(m.result as string, (byResult.get(m.result as string) ?? 0) + 1);
    for (const [result, n] of byResult) expect(sample(text, `hotplugd_module_loads_total{result="${result}"}`), result).toBe(n);
    expect(sample(text, 'hotplugd_module_load_duration_seconds_count')).toBe(byResult.get('would-load'));
    const idx = daemon.records.find((x) => x.msg === 'listening')!;
    expect(sample(text, 'hotplugd_index_modules')).toBe(idx.modules);
    expect(sample(text, 'hotplugd_index_aliases')).toBe(idx.aliases);
    expect(sample(text, 'hotplugd_index_load_duration_seconds')).toBeCloseTo((idx.indexMs as number) / 1000, 6);
    expect(sample(text, 'hotplugd_coldplug_devices')).toBe(5);
    expect(sample(text, 'hotplugd_queue_depth')).toBe(0);
    expect(text).toMatch(/^process_resident_memory_bytes /m);
    expect((await fetch(new URL('/', listening.url as string))).status).toBe(404);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('answers the probes /livez and /readyz: ready once the start-up walk has settled', async () => {
    daemon = startDaemon([...INDEX, '--sysfs', fakeSysfs(), '--metrics-listen', '127.0.0.1:0']);
    const listening = await daemon.waitFor((r) => r.msg === 'metrics endpoint listening', 20_000, 'the metrics record');
    await daemon.waitFor((r) => r.msg === 'settled', 20_000, 'settled');
    const at = (path: string): Promise<Response> => fetch(new URL(path, listening.url as string));
    const live = await at('/livez');
    expect([live.status, await live.text()]).toEqual([200, 'ok\n']);
    // Ready follows the settled record once start-up is over (the daemon has also loaded the code it keeps for later).
    let ready = await at('/readyz');
    for (let i = 0; i < 100 && ready.status !== 200; i++) {
      expect([ready.status, await ready.text()]).toEqual([503, 'not ready: starting\n']);
      await new Promise((r) => setTimeout(r, 100));
      ready = await at('/readyz');
    }
    expect([ready.status, await ready.text()]).toEqual([200, 'ok\n']);
    daemon.proc.kill('SIGTERM');
    expect(await daemon.exited).toBe(0);
  });

  it('exits 111 at once, naming the address, when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = runSync([...INDEX, '--sysfs', fakeSysfs(), '--metrics-listen', `127.0.0.1:${port}`]);
      expect(r.signal).toBeNull();
      expect(r.status).toBe(111);
      expect(r.stderr.trim()).toBe(`hotplugd: --metrics-listen 127.0.0.1:${port}: cannot listen: address already in use (EADDRINUSE) [E_SYSTEM]`);
    } finally {
      taken.close();
    }
  });

  it('exits 100 naming the flag for an address that is not ADDR:PORT', () => {
    const r = runSync([...INDEX, '--metrics-listen', 'localhost']);
    expect(r.status).toBe(100);
    expect(r.stderr).toMatch(/^hotplugd: --metrics-listen takes ADDR:PORT/);
  });
});
