/**
 * The daemon's logger: pino, JSON lines on stdout (one record per load), or
 * human-readable through pino-pretty on a terminal or on request.
 */
import { pino, type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty' | 'auto';

export function createLogger(opts: { format: LogFormat; level?: string; stream?: NodeJS.WritableStream }): Logger {
  const stream = opts.stream ?? process.stdout;
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && (stream as { isTTY?: boolean }).isTTY === true);
  const base = { level: opts.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (pretty) {
    return pino(base, pino.transport({ target: 'pino-pretty', options: { destination: 1, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' } }));
  }
  return pino(base, stream as pino.DestinationStream);
}
