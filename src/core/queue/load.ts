/**
 * One module load: Kernel.load with retries (EAGAIN, EBUSY, ENOMEM, EINTR,
 * ETIMEDOUT: up to maxAttempts, doubling backoff, each attempt recorded) and
 * the load timeout (a load still in flight is named in a warning and left
 * behind; its record is written when the kernel answers). EEXIST is success.
 * Writes the load's record; returns whether the module is now in the kernel.
 */
import { type LoadOutcome, TRANSIENT_ERRNOS } from '../kernel.js';
import { type QueueContext } from './context.js';
import { fail } from './records.js';
import { LOAD_MSG, LOAD_TIMEOUT_MSG, type LoadResult, round } from './types.js';

const TIMEOUT = Symbol('timeout');

/** Load with retries and the load timeout. Returns false when the module is down for its dependents. */
export async function loadModule(ctx: QueueContext, name: string, device: string, rec: Record<string, unknown>, path: string, params: string, enqueuedAt: number): Promise<boolean> {
  const withParams = params !== '' ? { params } : {};
  for (let attempt = 1; ; attempt++) {
    const startedAt = ctx.now();
    const pending = ctx.kernel.load({ name, path, params });
    const outcome = await withTimeout(pending, ctx.loadTimeoutMs);
    const queueMs = round(startedAt - enqueuedAt);
    const tries = attempt > 1 ? { attempt } : {};
    if (outcome === TIMEOUT) {
      ctx.counts.loadTimeouts++;
      ctx.inFlight.add(name);
      ctx.log.warn({ ...rec, path, ...withParams, ms: round(ctx.now() - startedAt), loadTimeoutMs: ctx.loadTimeoutMs, ...tries }, LOAD_TIMEOUT_MSG);
      // The kernel answers some day: its record is written then, as usual.
      void pending.then(
        (late) => {
          ctx.inFlight.delete(name);
          record(ctx, name, device, late, { ...rec, path, ...withParams, ...tries }, startedAt, queueMs);
        },
        (e: unknown) => {
          ctx.inFlight.delete(name);
          ctx.log.error({ ...rec, path, err: e }, 'module load failed unexpectedly');
        },
      );
      return false;
    }
    if (!outcome.ok && TRANSIENT_ERRNOS.has(outcome.code) && attempt < ctx.maxAttempts && !ctx.stopping) {
      const retryInMs = ctx.retryDelayMs * 2 ** (attempt - 1);
      ctx.counts.retries++;
      ctx.log.warn(
        { ...rec, path, ...withParams, result: 'retrying' satisfies LoadResult, errno: outcome.errno, code: outcome.code, attempt, retryInMs, ms: round(ctx.now() - startedAt), queueMs },
        LOAD_MSG,
      );
      await new Promise((r) => setTimeout(r, retryInMs));
      if (ctx.stopping) return false;
      continue;
    }
    return record(ctx, name, device, outcome, { ...rec, path, ...withParams, ...tries }, startedAt, queueMs);
  }
}

/** Write a load's record; true when the module is now in the kernel. */
function record(ctx: QueueContext, name: string, device: string, outcome: LoadOutcome, rec: Record<string, unknown>, startedAt: number, queueMs: number): boolean {
  const ms = round(ctx.now() - startedAt);
  if (outcome.ok) {
    ctx.records.loaded.add(name); // its record is this one: no "already-loaded" later
    const result: LoadResult = ctx.kernel.loads ? 'loaded' : 'would-load';
    if (ctx.kernel.loads) ctx.counts.loaded++;
    else ctx.counts.wouldLoad++;
    ctx.log.info({ ...rec, result, ms, queueMs }, LOAD_MSG);
    return true;
  }
  if (outcome.code === 'EEXIST') {
    ctx.records.loaded.add(name);
    const rest = { ...rec };
    delete rest.params; // nothing was loaded with them
    ctx.log.info({ ...rest, result: 'already-loaded' satisfies LoadResult, errno: outcome.errno, code: outcome.code, ms, queueMs }, LOAD_MSG);
    return true;
  }
  fail(
    ctx,
    name,
    device,
    {
      ...rec,
      result: 'failed' satisfies LoadResult,
      errno: outcome.errno,
      code: outcome.code,
      ...(outcome.message !== undefined ? { error: outcome.message } : {}),
      ms,
      queueMs,
    },
    startedAt,
  );
  return false;
}

function withTimeout(p: Promise<LoadOutcome>, ms: number): Promise<LoadOutcome | typeof TIMEOUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
