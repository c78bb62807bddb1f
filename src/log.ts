/**
 * The daemon's logger: pino records, written where they go in the form that
 * place reads best (see log-format.ts):
 * - stdout is the journal ($JOURNAL_STREAM names stdout's device and inode):
 *   JSON lines behind a syslog priority prefix (`<3>` for failed loads);
 * - a terminal (`--log-format auto`, the default, or `pretty`): one line per
 *   record, coloured on a terminal;
 * - anything else: JSON lines.
 *
 * Every record is also offered, as its JSON line, to a RecordTap: the live
 * consumers inside the daemon (control-socket monitors, metrics, the `why`
 * history) read the same records the log has, nothing else.
 */
import { fstatSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import { humanLine, journalLine } from './log-format.js';

export type LogFormat = 'json' | 'pretty' | 'auto';

/** Whether `fd` is the stream systemd connected to the journal ($JOURNAL_STREAM is "DEV:INODE"). */
export function isJournalStream(fd: number, journalStream: string | undefined = process.env.JOURNAL_STREAM): boolean {
  const m = /^(\d+):(\d+)$/.exec(journalStream ?? '');
  if (!m) return false;
  try {
    const st = fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

/** A record as its fields: the JSON line parsed once, on first call, for every consumer of that record; undefined when the line is not a JSON object. */
export type ParsedRecord = () => Record<string, unknown> | undefined;

/** `line`, parsed at most once however many consumers ask. */
export function parseOnce(line: string): ParsedRecord {
  let parsed: Record<string, unknown> | undefined | null = null;
  return () => {
    if (parsed === null) {
      try {
        const v: unknown = JSON.parse(line);
        parsed = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
      } catch {
        parsed = undefined;
      }
    }
    return parsed;
  };
}

/**
 * A record consumer: gets each record's JSON line (no newline), synchronously,
 * as it is written, and its fields (parsed once for all consumers and the
 * terminal format).
 */
export type RecordListener = (line: string, record: ParsedRecord) => void;

/**
 * Fan-out of the log's records to live consumers. A listener must be quick
 * and must not throw (one that throws is removed, so a broken consumer
 * cannot silence the log or the others).
 */
export class RecordTap {
  private readonly listeners = new Set<RecordListener>();

  /** Start receiving records; call the returned function to stop. */
  subscribe(listener: RecordListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }

  publish(line: string, record: ParsedRecord = parseOnce(line)): void {
    for (const l of this.listeners) {
      try {
        l(line, record);
      } catch {
        this.listeners.delete(l);
      }
    }
  }
}

/** A pino destination that hands each JSON line to the tap and writes `rewrite(line, record)` to `out`. */
function rewriting(out: NodeJS.WritableStream, rewrite: ((line: string, record: ParsedRecord) => string) | undefined, tap: RecordTap | undefined): pino.DestinationStream {
  return {
    write(chunk: string): void {
      // pino writes one record per call, ending in a newline.
      const line = chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk;
      const record = parseOnce(line);
      if (tap !== undefined && tap.size > 0) tap.publish(line, record);
      out.write(rewrite === undefined ? chunk : `${rewrite(line, record)}\n`);
    },
  };
}

export function createLogger(opts: { format: LogFormat; level?: string; stream?: NodeJS.WritableStream; journal?: boolean; tap?: RecordTap }): Logger {
  const stream = opts.stream ?? process.stdout;
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  const journal = opts.journal ?? (stream === process.stdout && isJournalStream(1));
  const base = { level: opts.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (opts.format === 'pretty' || (opts.format === 'auto' && tty && !journal)) {
    return pino(base, rewriting(stream, (line, record) => humanLine(record() ?? { msg: line }, tty), opts.tap));
  }
  if (journal) return pino(base, rewriting(stream, journalLine, opts.tap));
  if (opts.tap !== undefined) return pino(base, rewriting(stream, undefined, opts.tap));
  return pino(base, stream as pino.DestinationStream);
}
