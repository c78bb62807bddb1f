/**
 * What a device, a file or a client puts in a field reaches a terminal as
 * one escaped line, through the real processes: the daemon's one-line log
 * format, `coldplug --log-format pretty`, `status`, `why`, `monitor`,
 * `reload`, `match`, and error lines. JSON output keeps the exact text.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, killDaemons, Raw, type Ran, spawnCli, startWith, tmp } from '../support/control-helpers.js';
import { FIXTURE_DIR } from '../support/helpers.js';

afterEach(killDaemons);

/** The device: clear the screen, paint red, then a forged JSON record on a line of its own. */
const NAME = 'esc\x1b[2J\x1b[31mRED\n{"level":50,"msg":"FORGED"}';
const SHOWN = 'esc\\x1b[2J\\x1b[31mRED\\x0a{"level":50,"msg":"FORGED"}';
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Output that is only whole lines, none forged, with no byte a terminal acts on. */
function expectInert(out: string): void {
  expect(out).not.toMatch(ACTIVE);
  expect(out).not.toMatch(/^\{"level":50,"msg":"FORGED"\}/m);
}

function sysfsWithEvilDevice(): string {
  const root = tmp();
  const dir = join(root, 'devices', NAME);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'uevent'), 'MODALIAS=platform:pcspkr\n');
  return root;
}

describe('human-readable output with control bytes in every field', () => {
  it('coldplug --log-format pretty prints the device as one escaped line', async () => {
    const r = await cli(['coldplug', '--dry-run', '--log-format', 'pretty', '--sysfs', sysfsWithEvilDevice(), '--modules-dir', FIXTURE_DIR, '--config-dir', '', '--cmdline', '', '--cache-dir', '']);
    expect(r.status).toBe(0);
    expectInert(r.stdout);
    expect(r.stdout).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} would-load +pcspkr +/devices/${SHOWN.replace(/[\\[\]{}.*+?^$()|]/g, '\\$&')} [\\d.]+ms$`, 'm'));
  });

  it('the daemon log, status, why, monitor and reload escape the device and the index path', async () => {
    const dir = tmp();
    const sock = join(dir, 'control');
    const mods = join(dir, `mods-${NAME}`);
    symlinkSync(FIXTURE_DIR, mods);
    const d = await startWith(sock, ['--modules-dir', mods], sysfsWithEvilDevice());
    // The JSON log has the exact text.
    expect(d.records.find((r) => r.result === 'would-load')).toMatchObject({ module: 'pcspkr', devpath: `/devices/${NAME}` });

    const st = await cli(['status', '--control', sock]);
    expect(st.status).toBe(0);
    expectInert(st.stdout);
    expect(st.stdout).toContain(`mods-${SHOWN}`);
    expect(JSON.parse((await cli(['status', '--control', sock, '--json'])).stdout)).toMatchObject({ index: { source: mods } });

    const why = await cli(['why', '--control', sock, `/devices/${NAME}`]);
    expect(why.status).toBe(0);
    expectInert(why.stdout);
    expect(why.stdout).toContain(`coldplug devpath=/devices/${SHOWN} modalias=platform:pcspkr`);

    const monitor = spawnCli(['monitor', '--control', sock]);
    const probe = await Raw.open(sock);
    for (let i = 0; i < 200; i++) {
      const s = (await probe.ask({ cmd: 'status' })).status as { control: { monitors: number } };
      if (s.control.monitors === 1) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    probe.s.destroy();
    const reload = await cli(['reload', '--control', sock]);
    expect(reload.status).toBe(0);
    expectInert(reload.stdout);
    expect(reload.stdout).toContain(`reloaded: ${mods.slice(0, -NAME.length)}${SHOWN} (`);
    await d.waitFor((r) => r.msg === 'settled' && r.requests === 2, 10_000, 'the settled record after the reload');
    await new Promise((r) => setTimeout(r, 200)); // the monitor's pipe
    monitor.proc.kill('SIGINT');
    const mon: Ran = await monitor.done;
    expectInert(mon.stdout);
    expect(mon.stdout).toMatch(new RegExp(`would-load +pcspkr +/devices/${SHOWN.replace(/[\\[\]{}.*+?^$()|]/g, '\\$&')} `));
    expect(mon.stdout).toMatch(/ info {2}reloaded index="[^\n]*mods-esc\\x1b\[2J/);
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  });

  it('error lines: an unknown command, a skipped module file, a control path', async () => {
    const unknown = await cli([NAME]);
    expect(unknown.status).toBe(100);
    expectInert(unknown.stderr);
    expect(unknown.stderr).toBe(`hotplugd: unknown command "${SHOWN}"; see "hotplugd --help" [E_USAGE]\n`);
    // A flag's usage error: the flag as given, escaped once.
    const flag = await cli(['match', `--x${NAME}`]);
    expect(flag.status).toBe(100);
    expectInert(flag.stderr);
    expect(flag.stderr).toContain(`unknown flag --x${SHOWN}`);

    const tree = tmp();
    writeFileSync(join(tree, `${NAME}.ko`), 'not ELF');
    const bm = await cli(['build-meta', tree, '-o', join(tmp(), 'meta.pb')]);
    expect(bm.status).toBe(0);
    expectInert(bm.stderr);
    expect(bm.stderr).toContain(`/${SHOWN}.ko: skipped (`);

    // A literal "\x1b" and a right-to-left override in a path: neither reads as something else.
    const st = await cli(['status', '--control', `/nonexistent/a\\x1b\u202egpj.exe\n${NAME}`]);
    expect(st.status).toBe(111);
    expectInert(st.stderr);
    expect(st.stderr).toContain(`/nonexistent/a\\\\x1b\\u{202e}gpj.exe\\x0a${SHOWN}: no such socket [E_SYSTEM]\n`);
  });
});
