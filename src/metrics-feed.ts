/**
 * DaemonMetrics without prom-client on the boot path: importing prom-client
 * costs ~40 ms of JavaScript on this machine (a sixth of start-up), so the
 * metrics module is imported after start-up, when the first `settled` record
 * is written (coldplug loads done), or at the first scrape if that comes
 * earlier. Until then the records are kept as they come (their JSON lines;
 * past MAX_BUFFERED_BYTES of them the import starts at once) and replayed in
 * order, so the counts are those of every record since start.
 */
import { lazy } from './core/lazy.js';
import { RecordTap } from './log.js';
import type { DaemonGauges, DaemonMetrics } from './metrics.js';

/** prom-client and the metrics, loaded at the first metrics request, or by the daemon's preload. */
export const loadMetrics = lazy(() => import('./metrics.js'));

/**
 * Record text kept before the metrics module is loaded: a coldplug writes a
 * few hundred records (a record for a CPU's modalias is ~2.5 KB), the import
 * takes ~40 ms, so the buffer stays near this size at worst.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/** prom-client's Registry.contentType for the Prometheus text format (checked by the tests). */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class MetricsFeed {
  private buffered: string[] | undefined = [];
  private bufferedBytes = 0;
  private readonly inner = new RecordTap();
  private loading: Promise<DaemonMetrics> | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    tap: RecordTap,
    private readonly gauges: () => DaemonGauges,
    private readonly opts: { processMetrics?: boolean } = {},
  ) {
    this.unsubscribe = tap.subscribe((line, record) => {
      if (this.buffered === undefined) return this.inner.publish(line, record);
      this.buffered.push(line);
      this.bufferedBytes += line.length;
      if (this.bufferedBytes >= MAX_BUFFERED_BYTES || line.includes('"msg":"settled"')) setImmediate(() => void this.metrics());
    });
  }

  /** The metrics, loading them now if they are not yet. */
  metrics(): Promise<DaemonMetrics> {
    this.loading ??= loadMetrics().then(({ DaemonMetrics }) => {
      const m = new DaemonMetrics(this.inner, this.gauges, this.opts);
      const lines = this.buffered ?? [];
      this.buffered = undefined;
      this.bufferedBytes = 0;
      for (const line of lines) this.inner.publish(line);
      return m;
    });
    return this.loading;
  }

  /** The Prometheus text exposition (loads the metrics first if needed). */
  async text(): Promise<string> {
    return (await this.metrics()).text();
  }

  /** Content-Type of text(), once loaded (Prometheus text format 0.0.4). */
  get contentType(): string {
    return CONTENT_TYPE;
  }

  close(): void {
    this.unsubscribe();
    this.buffered = undefined;
  }
}
