/**
 * What reaches a terminal: one escaping function (src/printable.ts), and every
 * human-readable output built with it — the one-line log format, status,
 * why, client error lines, command error lines. A field from a device, a file
 * or a client never moves the cursor, changes colours or starts a line.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { errorLine } from '../../src/control/client.js';
import { runCommand } from '../../src/commands/common.js';
import { statusLines } from '../../src/commands/status.js';
import { whyLines } from '../../src/commands/why.js';
import { HotplugError } from '../../src/errors.js';
import { humanLine } from '../../src/log-format.js';
import { printable } from '../../src/printable.js';

/** The devpath: clear the screen, paint red, then a forged JSON record on a line of its own. */
const EVIL = '/devices/esc\x1b[2J\x1b[31mRED\n{"level":50,"msg":"FORGED"}';
const EVIL_SHOWN = '/devices/esc\\x1b[2J\\x1b[31mRED\\x0a{"level":50,"msg":"FORGED"}';
/** Characters a terminal acts on: C0, DEL, C1, line/paragraph separators, bidi controls. */
// eslint-disable-next-line no-control-regex
const ACTIVE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

function expectInert(text: string): void {
  expect(text).not.toMatch(ACTIVE);
}

describe('printable', () => {
  it('escapes C0, DEL and C1 as \\xNN, separators and bidi controls as \\u{N}, and the backslash itself', () => {
    expect(printable(EVIL)).toBe(EVIL_SHOWN);
    expect(printable('a\x00b\x7fc\x80d\x9be\x9f')).toBe('a\\x00b\\x7fc\\x80d\\x9be\\x9f');
    expect(printable('x\u2028y\u2029z')).toBe('x\\u{2028}y\\u{2029}z');
    expect(printable('\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c')).toBe(
      '\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\\u{2066}\\u{2067}\\u{2068}\\u{2069}\\u{200e}\\u{200f}\\u{61c}',
    );
    // Unambiguous: a literal backslash-x in a name never reads as an escaped byte.
    expect(printable('a\\x1b')).toBe('a\\\\x1b');
    expect(printable('a\\x1b')).not.toBe(printable('a\x1b'));
  });

  it('keeps printable text, UTF-8 letters and tabs-free ASCII as they are', () => {
    const plain = 'pci:v00008086d00001234sv*sd*bc02sc00i* é ü 中文 ✓ [a-z]?';
    expect(printable(plain)).toBe(plain);
  });
});

describe('human-readable outputs escape every field', () => {
  it('the one-line terminal format: a module record and any other record, coloured or not', () => {
    for (const colour of [false, true]) {
      const rec = {
        level: 30,
        time: '2026-12-07T00:00:00.000Z',
        msg: 'module',
        result: 'failed',
        module: 'evil\x1b[31m',
        devpath: EVIL,
        code: 'E\x1b[0m\n',
        ms: 1,
        reason: 'why\u202eexe.gpj',
        nested: { m: 'x\u2028y\x9b' },
      };
      const line = humanLine(rec, colour);
      // Only hotplugd's own colour codes remain (paint()); every field is escaped.
      // eslint-disable-next-line no-control-regex
      expectInert(line.replace(/\x1b\[(?:0|2|31|32|33|36)m/g, ''));
      expect(line).toContain(EVIL_SHOWN);
      expect(line).toContain('evil\\x1b[31m');
      expect(line).toContain('E\\x1b[0m\\x0a');
      expect(line).toContain('why\\u{202e}exe.gpj');
      expect(line).toContain('x\\u{2028}y\\x9b');
    }
    const other = humanLine({ level: 50, time: 0, msg: 'uevent\x1b[2J rejected\n', devpath: EVIL, note: 'a b\x07' }, false);
    expectInert(other);
    expect(other).toContain('uevent\\x1b[2J rejected\\x0a');
    expect(other).toContain(`devpath="${EVIL_SHOWN.replace(/"/g, '\\"')}"`); // quoted: it has quotes
    expect(other).toContain('note="a b\\x07"');
  });

  it('status: every row and every failed module line', () => {
    const lines = statusLines({
      pid: 1,
      version: '0.1.0',
      phase: 'running',
      uptimeS: 1,
      startedAt: 'x',
      mode: 'load',
      jobs: 1,
      index: { kind: 'depmod', source: EVIL, kernelRelease: 'r\x1b[2J', modules: 1, aliases: 1 },
      queue: { depth: 0, inFlight: ['m\nn'] },
      counts: {},
      uevents: { received: 0, adds: 0, rejected: 0, lost: 0 },
      coldplugs: 1,
      resyncs: 0,
      reloads: 0,
      settled: true,
      lastSettledAt: 'now',
      failed: [{ module: 'evil\x1b[31m', code: 'ENODEV\x1b[0m', errno: 19, time: 't\n{"level":50}' }],
    });
    for (const l of lines) expectInert(l);
    const text = lines.join('\n');
    expect(text).toContain(EVIL_SHOWN);
    expect(text).toContain('  evil\\x1b[31m: ENODEV\\x1b[0m (errno 19) at t\\x0a{"level":50}');
  });

  it('why: requests, decisions and what the index answers now', () => {
    const lines = whyLines({
      query: EVIL,
      reached: false,
      totals: { requests: 1, decisions: 1 },
      requests: [{ time: 't', origin: 'uevent', devpath: EVIL, modalias: 'm\x1b' }],
      decisions: [{ time: 't', result: 'failed', module: 'evil\x1b[31m', code: 'E\n', reason: 'a\\x1b \u2066b', devpath: EVIL }],
      index: [{ modalias: 'm\x1b', modules: [{ name: 'evil\x1b[31m', loadOrder: ['a\nb'], installCommands: { x: '/bin/true\x1b' } }] }],
    });
    for (const l of lines) expectInert(l);
    expect(lines.join('\n')).toContain(EVIL_SHOWN);
    expect(lines.join('\n')).toContain('reason=a\\\\x1b \\u{2066}b');
  });

  it('error lines: a refusal from the daemon (message and code) and a command that fails', async () => {
    const line = errorLine({ error: `no such device ${EVIL}`, code: 'E_X\x1b[2J' }, ` pending: ${EVIL}`);
    expect(line.endsWith('\n')).toBe(true);
    expectInert(line.slice(0, -1));
    expect(line).toBe(`hotplugd: no such device ${EVIL_SHOWN} [E_X\\x1b[2J] pending: ${EVIL_SHOWN}\n`);

    const err = new PassThrough();
    let text = '';
    err.on('data', (d: Buffer) => (text += d.toString()));
    const io = { stdout: new PassThrough(), stderr: err, stdin: new PassThrough() };
    expect(await runCommand(io, () => Promise.reject(new HotplugError('E_INPUT', 'not a regular file', { file: `/tmp/a\\x1b${EVIL}` })))).toBe(111);
    expect(text).toBe(`hotplugd: /tmp/a\\\\x1b${EVIL_SHOWN}: not a regular file [E_INPUT]\n`);
    text = '';
    expect(await runCommand(io, () => Promise.reject(new Error(`boom ${EVIL}`)))).toBe(111);
    expect(text.endsWith('\n')).toBe(true);
    expectInert(text.slice(0, -1));
  });
});
