/**
 * The install-command path: a modprobe.d `install` command runs in place of
 * loading its module (core/install.ts says for which), once per module per
 * index load; refused (never run, never loaded) with installCommands 'refuse'
 * or no runner; reported as `would-run` in a dry run. A failing command is
 * recorded as a failure, so its dependents skip as after a failed load.
 * A command never holds the queue: its outcome is awaited for
 * installTimeoutMs (the runner kills its process group then) plus
 * installGraceMs; a command still running after that (a process SIGKILL
 * cannot end) is recorded failed, E_INSTALL_STUCK, and left behind like a
 * load past the load timeout (stuck, named by settle) until it ends.
 */
import { type CommandOutcome, commandFailureCode, commandSucceeded, INSTALL_STUCK, substituteCmdlineOpts } from '../install.js';
import { type PlanStep } from '../plan.js';
import { type QueueContext } from './context.js';
import { fail, skip } from './records.js';
import { INSTALL_ENDED_MSG, LOAD_MSG, type LoadResult, round } from './types.js';

const STUCK = Symbol('stuck');

/**
 * Run (or refuse, or in dry-run report) a module's install command in place
 * of loading it. Returns false when the module is down for its dependents.
 */
export async function runInstall(
  ctx: QueueContext,
  step: PlanStep,
  rec: Record<string, unknown>,
  command: string,
  params: string,
  device: string,
  enqueuedAt: number,
): Promise<boolean> {
  if (ctx.installPolicy === 'refuse' || ctx.runner === undefined) {
    // Decided again for every request (no failed-before): the reason stays "install-command".
    skip(ctx, device, 'install-command', { ...rec, command, ...(ctx.runner === undefined && ctx.installPolicy === 'run' ? { runner: 'none' } : {}) });
    return false;
  }
  if (ctx.commandsRan.has(step.name)) {
    // Once per module per index load: a storm of uevents does not run it again.
    skip(ctx, device, 'install-command-ran', { ...rec, command }, 'info');
    return true;
  }
  const full = substituteCmdlineOpts(command, params);
  const withParams = params !== '' ? { params } : {};
  // This record is the device's one for the module: no install-command-ran after it.
  ctx.records.firstForDevice(device, step.name);
  if (!ctx.kernel.loads) {
    ctx.commandsRan.add(step.name);
    ctx.counts.wouldRun++;
    ctx.log.info({ ...rec, command: full, ...withParams, result: 'would-run' satisfies LoadResult }, LOAD_MSG);
    return true;
  }
  const startedAt = ctx.now();
  const running = ctx.runner.run({ module: step.name, command: full, timeoutMs: ctx.installTimeoutMs });
  const o = await deadline(running, ctx.installTimeoutMs + ctx.installGraceMs);
  const ms = round(ctx.now() - startedAt);
  if (o === STUCK) {
    ctx.counts.installCommands++;
    ctx.counts.installStuck++;
    ctx.inFlight.add(step.name);
    const left = { ...rec, command: full, ...withParams };
    fail(ctx, step.name, device, { ...left, result: 'failed' satisfies LoadResult, code: INSTALL_STUCK, installTimeoutMs: ctx.installTimeoutMs, ms, queueMs: round(startedAt - enqueuedAt) }, enqueuedAt);
    void running.then(
      (late) => {
        ctx.inFlight.delete(step.name);
        ctx.log.warn({ ...left, exitCode: late.exitCode, ...(late.signal !== null ? { signal: late.signal } : {}), ms: round(ctx.now() - startedAt) }, INSTALL_ENDED_MSG);
      },
      (e: unknown) => {
        ctx.inFlight.delete(step.name);
        ctx.log.error({ ...left, err: e }, 'install command failed unexpectedly');
      },
    );
    return false;
  }
  const record = {
    ...rec,
    command: full,
    ...withParams,
    result: 'install-command' satisfies LoadResult,
    exitCode: o.exitCode,
    ...(o.signal !== null ? { signal: o.signal } : {}),
    ...(o.timedOut ? { timedOut: true } : {}),
    ...(o.error !== undefined ? { error: o.error } : {}),
    ...(o.output !== '' ? { output: o.output } : {}),
    ...(o.truncated ? { outputTruncated: true } : {}),
    ms,
    queueMs: round(startedAt - enqueuedAt),
  };
  ctx.counts.installCommands++;
  if (commandSucceeded(o)) {
    ctx.commandsRan.add(step.name);
    ctx.log.info(record, LOAD_MSG);
    return true;
  }
  fail(ctx, step.name, device, { ...record, code: commandFailureCode(o) }, enqueuedAt);
  return false;
}

/** The runner's outcome, or STUCK when it has none after `ms`. */
function deadline(p: Promise<CommandOutcome>, ms: number): Promise<CommandOutcome | typeof STUCK> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<typeof STUCK>((resolve) => {
    timer = setTimeout(() => resolve(STUCK), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
