/**
 * The real daemon's records on a journald stream: with $JOURNAL_STREAM naming
 * its stdout, every JSON line carries a syslog priority prefix (sd-daemon(3)).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

describe('journald stream', () => {
  it('prefixes every record of the real daemon when its stdout is the journal stream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-journal-'));
    const out = join(dir, 'stdout');
    const fd = openSync(out, 'w');
    const st = statSync(out, { bigint: true });
    const sysfs = join(dir, 'sys');
    mkdirSync(join(sysfs, 'devices/platform/pcspkr'), { recursive: true });
    writeFileSync(join(sysfs, 'devices/platform/pcspkr/uevent'), 'MODALIAS=platform:pcspkr\n');
    const conf = join(dir, 'modprobe.d');
    mkdirSync(conf);
    writeFileSync(join(conf, 'bl.conf'), 'blacklist pcspkr\n');
    const proc = spawn(
      process.execPath,
      ['dist/src/cli.js', 'coldplug', '--dry-run', '--modules-dir', FIXTURE_DIR, '--cmdline', '', '--config-dir', conf, '--sysfs', sysfs, '--log-format', 'json'],
      { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` } },
    );
    await new Promise((r) => proc.on('exit', r));
    closeSync(fd);
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/^<[0-7]>\{"level":/);
    expect(lines.find((l) => l.includes('"result":"blacklisted"'))).toMatch(/^<4>/);
  });});
