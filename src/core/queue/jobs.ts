/**
 * The `--jobs N` scheduler (N > 1): every step of a plan starts as soon as
 * the steps it needs have finished, and a load (or install command) holds one
 * of N slots. A module is loaded by one request at a time: another request
 * that reaches it waits for that load and then decides again, so the records
 * are the same decisions as with jobs = 1, in another order.
 */
import { type PlanStep } from '../plan.js';
import { type Down, type QueueContext } from './context.js';
import { decide, perform } from './step.js';

/**
 * jobs > 1: every step starts when the earlier steps it needs have finished
 * (its modules.dep dependencies and `pre:` softdeps, as loadOrder puts them
 * before it, and for a `post:` softdep the module it follows); loads wait for
 * a free slot. Resolves when every step has finished; a step that threw is
 * rethrown then, as the serial loop would.
 *
 * A step waits for one unfinished prerequisite at a time, in modules.dep
 * order (nearest first: usually the last to finish), and never holds a list
 * of them: a waiting step costs O(1) memory and the plan O(sum of its
 * dependency lists) time, even for a chain thousands of modules deep.
 */
export async function loadPlanAtOnce(
  ctx: QueueContext,
  plan: PlanStep[],
  target: string,
  base: object,
  device: string,
  enqueuedAt: number,
  down: Map<string, Down>,
): Promise<void> {
  const index = ctx.index; // a reload during the plan does not change what it waits for
  const position = new Map<string, number>();
  plan.forEach((step, i) => position.set(step.name, i));
  const steps: Promise<void>[] = [];
  const finished = new Set<string>();
  // The unfinished earlier step of this plan named so (only earlier ones: a cycle cannot make a step wait for itself).
  const unfinished = (name: string, i: number): Promise<void> | undefined => {
    const at = position.get(name);
    return at !== undefined && at < i && !finished.has(name) ? steps[at] : undefined;
  };
  for (const [i, step] of plan.entries()) {
    const run = async (): Promise<void> => {
      let wait: Promise<void> | undefined;
      for (const d of index.moduleByName(step.name)?.deps ?? []) if ((wait = unfinished(index.modules[d]!.name, i))) await wait;
      for (const pre of index.softdeps(step.name)?.pre ?? []) for (const name of index.lookup(pre).names) if ((wait = unfinished(name, i))) await wait;
      if (step.role === 'softdep-post' && step.dependencyOf !== undefined && (wait = unfinished(step.dependencyOf, i))) await wait;
      if (ctx.stopping || down.has(step.name)) return;
      // Another request is loading this module: wait for it, then decide on what the kernel says now.
      for (let other = ctx.active.get(step.name); other !== undefined; other = ctx.active.get(step.name)) await other;
      const work = decide(ctx, step, target, base, device, enqueuedAt, down);
      if (work !== 'stop' && work !== 'done') await exclusive(ctx, step.name, () => perform(ctx, work, device, enqueuedAt, down));
    };
    steps.push(run().finally(() => finished.add(step.name)));
  }
  const outcomes = await Promise.allSettled(steps);
  for (const o of outcomes) if (o.status === 'rejected') throw o.reason;
}

/** Mark the module in flight for other requests and hold a load slot while `work` runs. */
async function exclusive(ctx: QueueContext, name: string, work: () => Promise<void>): Promise<void> {
  let done!: () => void;
  ctx.active.set(name, new Promise<void>((r) => (done = r)));
  try {
    if (!ctx.slots.tryTake()) await ctx.slots.take();
    try {
      if (!ctx.stopping) await work();
    } finally {
      ctx.slots.release();
    }
  } finally {
    ctx.active.delete(name);
    done();
  }
}
