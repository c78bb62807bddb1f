/**
 * How records look where they go (pure: a JSON line in, a line out):
 * - journald: the JSON line behind a syslog priority prefix `<N>`, which
 *   journald reads from a service's stdout (SyslogLevelPrefix=yes, its
 *   default), so `journalctl -p err` finds failed loads;
 * - a terminal: one line per record, like `udevadm monitor`: time, result,
 *   module, device, errno name, ms; coloured by result. Every field goes
 *   through printable(): what a device, a file or a client put in a record
 *   cannot move the cursor, change colours or start a line.
 */
import { printable } from './printable.js';

/** syslog priorities: 3 err, 4 warning, 6 info, 7 debug. */
export type Priority = 2 | 3 | 4 | 6 | 7;

/** pino's numeric level to a syslog priority. */
function levelPriority(level: number): Priority {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** A record's result decides its priority when it has one; its level otherwise. */
export function recordPriority(rec: { level?: unknown; result?: unknown }): Priority {
  switch (rec.result) {
    case 'failed':
      return 3;
    case 'skipped':
    case 'blacklisted':
      return 4;
    case undefined:
      break;
    default:
      return 6;
  }
  return levelPriority(typeof rec.level === 'number' ? rec.level : 30);
}

const LEVEL_AT_START = /^\{"level":(\d+)/;
const RESULT = /"result":"(failed|skipped|blacklisted|[a-z-]+)"/;

/**
 * Prefix one pino JSON line with its priority, without parsing it: pino writes
 * "level" first, and "result" is one of our own fields (values never hold quotes).
 */
export function journalLine(line: string): string {
  const result = RESULT.exec(line)?.[1];
  const level = Number(LEVEL_AT_START.exec(line)?.[1] ?? 30);
  return `<${recordPriority({ level, result })}>${line}`;
}

const COLOURS: Record<string, string> = {
  loaded: '32', // green
  'would-load': '32',
  'install-command': '36', // cyan
  'already-loaded': '2', // dim
  builtin: '2',
  blacklisted: '33', // yellow
  skipped: '33',
  failed: '31', // red
};
const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };
/** Fields that the line's fixed columns already show, or that a person watching does not need (the JSON has them all). */
const BASE = new Set(['level', 'time', 'pid', 'msg', 'hostname']);
const SHOWN = new Set(['level', 'time', 'pid', 'msg', 'result', 'module', 'devpath', 'modalias', 'code', 'ms', 'hostname', 'path', 'queueMs', 'origin', 'errno']);

function clock(time: unknown): string {
  const d = typeof time === 'string' || typeof time === 'number' ? new Date(time) : new Date();
  if (Number.isNaN(d.getTime())) return '--:--:--.---';
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** A field's value for `key=value`: a string escaped, and quoted when it has spaces, quotes or `=`; anything else as JSON, escaped. */
function value(v: unknown): string {
  if (typeof v === 'string') {
    const s = printable(v);
    return /[\s"=]/.test(s) || s === '' ? `"${s.replace(/"/g, '\\"')}"` : s;
  }
  return printable(JSON.stringify(v) ?? String(v));
}

/** A field shown in a fixed column: escaped. */
function text(v: unknown): string {
  return printable(typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v)));
}

/**
 * One terminal line for a record. Per-module records:
 * `12:00:01.234 loaded       e1000  /devices/pci0000:00/0000:00:03.0  12.3ms  [queueMs=0.1 ...]`;
 * others: `12:00:01.234 info   listening  port=123 ...`.
 */
export function humanLine(rec: Record<string, unknown>, colour: boolean): string {
  const paint = (code: string | undefined, s: string): string => (colour && code !== undefined ? `\x1b[${code}m${s}\x1b[0m` : s);
  const isModule = typeof rec.result === 'string';
  const extra = Object.entries(rec)
    .filter(([k]) => (isModule ? !SHOWN.has(k) : !BASE.has(k)))
    .map(([k, v]) => `${printable(k)}=${value(v)}`)
    .join(' ');
  const t = clock(rec.time);
  if (typeof rec.result === 'string') {
    const device = typeof rec.devpath === 'string' ? rec.devpath : typeof rec.modalias === 'string' ? rec.modalias : '-';
    const parts = [
      t,
      paint(COLOURS[rec.result], printable(rec.result).padEnd(15)),
      text(rec.module ?? '-').padEnd(22),
      printable(device),
      ...(typeof rec.code === 'string' ? [paint(COLOURS.failed, printable(rec.code))] : []),
      ...(typeof rec.ms === 'number' ? [`${rec.ms}ms`] : []),
      ...(extra !== '' ? [extra] : []),
    ];
    return parts.join(' ');
  }
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const levelColour = level >= 50 ? '31' : level >= 40 ? '33' : undefined;
  return [t, paint(levelColour, name), text(rec.msg ?? ''), ...(extra !== '' ? [extra] : [])].join(' ');
}
