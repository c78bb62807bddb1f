/**
 * The once-only records: which modules already have their loaded / builtin /
 * blacklisted record in this index load, and which device already has its one
 * failure or skip record for a module (a set of "device\0module" keys, oldest
 * dropped first beyond the cap: bounded memory under a uevent storm). Also the
 * two writers that honour them: skip() and fail(). All forgotten on reload.
 */
import { type QueueContext } from './context.js';
import { LOAD_MSG, type LoadResult, round, type SkipReason } from './types.js';

export class Records {
  readonly loaded = new Set<string>();
  readonly builtin = new Set<string>();
  readonly blacklisted = new Set<string>();
  /** Devices that have a failure or skip record for a module: "device\0module", oldest first, capped. */
  private readonly forDevice = new Set<string>();

  constructor(private readonly deviceRecordCap: number) {}

  /** The "device\0module" keys remembered now (at most the cap). */
  get deviceKeys(): ReadonlySet<string> {
    return this.forDevice;
  }

  /** True the first time a record for this device and module is asked for (bounded memory). */
  firstForDevice(device: string, module: string): boolean {
    const key = `${device}\0${module}`;
    if (this.forDevice.has(key)) return false;
    if (this.forDevice.size >= this.deviceRecordCap) {
      const oldest = this.forDevice.values().next().value;
      if (oldest !== undefined) this.forDevice.delete(oldest);
    }
    this.forDevice.add(key);
    return true;
  }

  clear(): void {
    this.loaded.clear();
    this.builtin.clear();
    this.blacklisted.clear();
    this.forDevice.clear();
  }
}

/** Add to a once-only set; true the first time. */
export function once(set: Set<string>, name: string): boolean {
  if (set.has(name)) return false;
  set.add(name);
  return true;
}

/** Count a skip; its record is written once per device and module. */
export function skip(ctx: QueueContext, device: string, reason: SkipReason, rec: Record<string, unknown>, level: 'info' | 'warn' = 'warn'): void {
  ctx.counts.skipped++;
  if (ctx.records.firstForDevice(device, rec.module as string)) ctx.log[level]({ ...rec, result: 'skipped' satisfies LoadResult, reason }, LOAD_MSG);
}

/** Record a failure; that record is this device's one for the module (no failed-before after it). */
export function fail(ctx: QueueContext, name: string, device: string, record: Record<string, unknown>, enqueuedAt: number): void {
  const code = typeof record.code === 'string' ? record.code : 'EUNKNOWN';
  ctx.failed.set(name, code);
  ctx.records.firstForDevice(device, name);
  ctx.counts.failed++;
  ctx.log.error('queueMs' in record ? record : { ...record, queueMs: round(ctx.now() - enqueuedAt) }, LOAD_MSG);
}
