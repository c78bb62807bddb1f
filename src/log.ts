/**
 * The daemon's logger: pino records, written where they go in the form that
 * place reads best (see log-format.ts):
 * - stdout is the journal ($JOURNAL_STREAM names stdout's device and inode):
 *   JSON lines behind a syslog priority prefix (`<3>` for failed loads);
 * - a terminal (`--log-format auto`, the default, or `pretty`): one line per
 *   record, coloured on a terminal;
 * - anything else: JSON lines.
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

/** A pino destination that rewrites each JSON line before it reaches `out`. */
function rewriting(out: NodeJS.WritableStream, rewrite: (line: string) => string): pino.DestinationStream {
  return {
    write(chunk: string): void {
      // pino writes one record per call, ending in a newline.
      out.write(`${rewrite(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk)}\n`);
    },
  };
}

function parseRecord(line: string): Record<string, unknown> {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { msg: line };
  }
}

export function createLogger(opts: { format: LogFormat; level?: string; stream?: NodeJS.WritableStream; journal?: boolean }): Logger {
  const stream = opts.stream ?? process.stdout;
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  const journal = opts.journal ?? (stream === process.stdout && isJournalStream(1));
  const base = { level: opts.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (opts.format === 'pretty' || (opts.format === 'auto' && tty && !journal)) {
    return pino(base, rewriting(stream, (line) => humanLine(parseRecord(line), tty)));
  }
  if (journal) return pino(base, rewriting(stream, journalLine));
  return pino(base, stream as pino.DestinationStream);
}
