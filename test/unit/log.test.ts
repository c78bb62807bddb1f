/**
 * Where records go: journald priority prefixes (sd-daemon(3)'s "<N>" on a
 * service's stdout) and one human line per record on a terminal.
 */
import { closeSync, mkdtempSync, openSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isJournalStream, parseOnce, RecordTap } from '../../src/log.js';
import { humanLine, journalLine } from '../../src/log-format.js';

function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { stream, lines };
}

describe('journald priorities', () => {
  it('gives failed loads <3>, skipped and blacklisted <4>, other records by level', () => {
    expect(journalLine('{"level":50,"msg":"module","result":"failed","code":"ENODEV"}')).toMatch(/^<3>\{/);
    expect(journalLine('{"level":40,"msg":"module","result":"skipped"}')).toMatch(/^<4>/);
    expect(journalLine('{"level":30,"msg":"module","result":"blacklisted"}')).toMatch(/^<4>/);
    expect(journalLine('{"level":30,"msg":"module","result":"loaded"}')).toMatch(/^<6>/);
    expect(journalLine('{"level":40,"msg":"uevents lost; resync scheduled"}')).toMatch(/^<4>/);
    expect(journalLine('{"level":50,"msg":"uevent socket closed"}')).toMatch(/^<3>/);
    expect(journalLine('{"level":20,"msg":"no module for modalias"}')).toMatch(/^<7>/);
  });

  it('recognises the journal by $JOURNAL_STREAM naming the descriptor device and inode', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'hotplugd-log-')), 'out');
    const fd = openSync(f, 'w');
    const st = statSync(f, { bigint: true });
    expect(isJournalStream(fd, `${st.dev}:${st.ino}`)).toBe(true);
    expect(isJournalStream(fd, `${st.dev}:${st.ino + 1n}`)).toBe(false);
    expect(isJournalStream(fd, undefined)).toBe(false);
    expect(isJournalStream(fd, 'garbage')).toBe(false);
    closeSync(fd);
  });

});

describe('terminal lines', () => {
  it('prints one line per module record with time, result, module, device, errno name and ms', () => {
    const rec = { level: 50, time: '2026-11-27T06:00:01.234Z', msg: 'module', module: 'e1000', devpath: '/devices/pci0000:00/0000:00:03.0', result: 'failed', errno: 19, code: 'ENODEV', ms: 12.5, path: '/lib/x.ko' };
    const line = humanLine(rec, false);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} failed +e1000 +\/devices\/pci0000:00\/0000:00:03\.0 ENODEV 12\.5ms$/);
    expect(humanLine(rec, true)).toContain('\x1b[31mfailed');
  });

  it('shows other records as level, message and their fields', () => {
    const line = humanLine({ level: 40, time: 0, msg: 'uevents lost; resync scheduled', lost: '3', reason: 'seqnum gap' }, false);
    expect(line).toMatch(/ warn {2}uevents lost; resync scheduled lost=3 reason="seqnum gap"$/);
  });

  it('writes through the logger one line per record in pretty format', () => {
    const s = sink();
    const log = createLogger({ format: 'pretty', stream: s.stream, journal: false });
    log.info({ module: 'pcspkr', devpath: '/devices/platform/pcspkr', result: 'would-load', ms: 0.1 }, 'module');
    log.warn({ reason: 'x' }, 'uevent rejected');
    expect(s.lines).toHaveLength(2);
    expect(s.lines[0]).toMatch(/would-load +pcspkr +\/devices\/platform\/pcspkr 0\.1ms$/);
    expect(s.lines[1]).toMatch(/warn {2}uevent rejected reason=x$/);
  });

  it('stays JSON when not a terminal and not the journal', () => {
    const s = sink();
    createLogger({ format: 'auto', stream: s.stream, journal: false }).info({ result: 'loaded', module: 'x' }, 'module');
    expect(JSON.parse(s.lines[0]!)).toMatchObject({ msg: 'module', result: 'loaded', module: 'x' });
  });

  it('hands every record to the tap as its JSON line, whatever the output format, and drops a listener that throws', () => {
    for (const format of ['json', 'pretty'] as const) {
      const s = sink();
      const tap = new RecordTap();
      const seen: string[] = [];
      const stop = tap.subscribe((line) => seen.push(line));
      tap.subscribe(() => {
        throw new Error('broken consumer');
      });
      const log = createLogger({ format, stream: s.stream, journal: false, tap });
      log.info({ result: 'loaded', module: 'x' }, 'module');
      log.warn({ reason: 'y' }, 'uevent rejected');
      stop();
      log.info({ module: 'z' }, 'module');
      expect(seen.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['module', 'uevent rejected']);
      expect(JSON.parse(seen[0]!)).toMatchObject({ result: 'loaded', module: 'x' });
      expect(s.lines).toHaveLength(3);
      expect(tap.size).toBe(0);
    }
  });

  it("parses each record once for all of the tap's consumers: they share one object", () => {
    const s = sink();
    const tap = new RecordTap();
    const seen: (Record<string, unknown> | undefined)[] = [];
    tap.subscribe((_line, record) => seen.push(record()));
    tap.subscribe((_line, record) => seen.push(record()));
    createLogger({ format: 'pretty', stream: s.stream, journal: false, tap }).info({ result: 'loaded', module: 'x' }, 'module');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatchObject({ msg: 'module', module: 'x' });
    expect(seen[1]).toBe(seen[0]);
    expect(parseOnce('[1]')()).toBeUndefined(); // not a record
  });
});
