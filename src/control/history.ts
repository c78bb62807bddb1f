/**
 * The daemon's memory for `why` and `status`, bounded:
 * - the last REQUEST_CAP requests as they were queued (uevent or coldplug:
 *   devpath, modalias, seqnum, time), including those no module matched;
 * - the last DECISION_CAP per-module records (module, result, errno/code,
 *   reason, role, the request's devpath/modalias/origin, time), read from the
 *   log's records (RecordTap), the same facts the log has;
 * - the modules whose last record is `failed`, with errno and code (at most
 *   FAILED_CAP; a later success or a reload removes them).
 * A ring of 4,096 entries each is a few MB at most (entries are small
 * objects); a why scans them, ~8,000 comparisons.
 */
import { parseOnce, type ParsedRecord } from '../log.js';

export const REQUEST_CAP = 4096;
export const DECISION_CAP = 4096;
export const FAILED_CAP = 1024;
/** How many of the latest matches a `why` answer lists, each kind. */
export const WHY_LIMIT = 20;

export interface RequestEntry {
  time: string;
  origin: string;
  devpath?: string | undefined;
  modalias?: string | undefined;
  seqnum?: string | undefined;
}

export type DecisionEntry = Record<string, unknown> & { module: string; result: string };

export interface FailedModule {
  module: string;
  errno?: number;
  code?: string;
  time?: string;
}

/** A fixed-size ring: the newest `cap` items. */
class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;
  constructor(private readonly cap: number) {}

  push(item: T): void {
    if (this.items.length < this.cap) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.cap;
  }

  /** Oldest first. */
  toArray(): T[] {
    return this.items.length < this.cap ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

const DECISION_FIELDS = ['time', 'module', 'result', 'reason', 'errno', 'code', 'role', 'dependencyOf', 'modalias', 'devpath', 'seqnum', 'origin', 'ms'];

export class History {
  private readonly requests = new Ring<RequestEntry>(REQUEST_CAP);
  private readonly decisions = new Ring<DecisionEntry>(DECISION_CAP);
  private readonly failedModules = new Map<string, FailedModule>();

  constructor(private readonly now: () => string = () => new Date().toISOString()) {}

  request(r: { origin: string; devpath?: string | undefined; modalias?: string | undefined; seqnum?: string | undefined }): void {
    this.requests.push({ time: this.now(), origin: r.origin, devpath: r.devpath, modalias: r.modalias, seqnum: r.seqnum });
  }

  /** One log record (its JSON line, and its fields parsed once for every consumer); only per-module records (msg "module") and "reloaded" matter. */
  record(line: string, parsed: ParsedRecord = parseOnce(line)): void {
    if (!line.includes('"msg":"module"') && !line.includes('"msg":"reloaded"')) return;
    const rec = parsed();
    if (rec === undefined) return;
    if (rec.msg === 'reloaded') {
      this.failedModules.clear(); // the queue forgets failures at reload: so does status
      return;
    }
    if (rec.msg !== 'module' || typeof rec.module !== 'string' || typeof rec.result !== 'string') return;
    const d: Record<string, unknown> = {};
    for (const k of DECISION_FIELDS) if (rec[k] !== undefined) d[k] = rec[k];
    this.decisions.push(d as DecisionEntry);
    if (rec.result === 'failed') {
      this.failedModules.delete(rec.module);
      if (this.failedModules.size >= FAILED_CAP) this.failedModules.delete(this.failedModules.keys().next().value!);
      this.failedModules.set(rec.module, {
        module: rec.module,
        ...(typeof rec.errno === 'number' ? { errno: rec.errno } : {}),
        ...(typeof rec.code === 'string' ? { code: rec.code } : {}),
        ...(typeof rec.time === 'string' ? { time: rec.time } : {}),
      });
    } else if (rec.result === 'loaded' || rec.result === 'already-loaded' || rec.result === 'builtin') {
      this.failedModules.delete(rec.module);
    }
  }

  failed(): FailedModule[] {
    return [...this.failedModules.values()];
  }

  /**
   * Requests that named `query` (as devpath or modalias) and per-module
   * decisions that named it (as module, dependencyOf, devpath or modalias),
   * the latest WHY_LIMIT of each, oldest first, with the totals.
   */
  why(query: string): { requests: RequestEntry[]; decisions: DecisionEntry[]; totals: { requests: number; decisions: number } } {
    const reqs = this.requests.toArray().filter((r) => r.devpath === query || r.modalias === query);
    const decs = this.decisions.toArray().filter((d) => d.module === query || d.dependencyOf === query || d.devpath === query || d.modalias === query);
    return { requests: reqs.slice(-WHY_LIMIT), decisions: decs.slice(-WHY_LIMIT), totals: { requests: reqs.length, decisions: decs.length } };
  }

  /** The modaliases requests carried for a devpath (newest last, distinct). */
  modaliasesOf(devpath: string): string[] {
    const out = new Set<string>();
    for (const r of this.requests.toArray()) if (r.devpath === devpath && r.modalias !== undefined) out.add(r.modalias);
    return [...out];
  }
}
