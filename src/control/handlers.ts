/**
 * The control socket's commands, one handler each, in one table: the server
 * (server.ts) looks a request's `cmd` up here and checks its access. A new
 * command is one more entry (metrics: `metrics: { access: 'read', run: ... }`;
 * trigger: `trigger: { access: 'write', run: ... }`).
 */
import { basename } from 'node:path';
import { describe } from '../core/explain.js';
import { type Daemon } from '../daemon.js';
import { type RecordTap } from '../log.js';
import { VERSION } from '../version.js';
import { type History } from './history.js';
import { errorReply, type Reply, type Request, SETTLE_DEFAULT_S, SETTLE_MAX_S } from './protocol.js';
import { type Handler } from './server.js';

export interface ControlContext {
  daemon: Daemon;
  tap: RecordTap;
  history: History;
  /** What status reports about the set-up. */
  info: { mode: string; jobs: number; modulesDir: string; control: string };
  startedAt: Date;
  /** A device's MODALIAS now, from sysfs (why DEVPATH of a device no request named); undefined when it has none. */
  readModalias?: (devpath: string) => Promise<string | undefined>;
  /** The devpath a sysfs path names (`/sys/devices/...`, `/sys/class/net/eth0`), as udevadm info takes them; undefined for anything else. */
  devpathOf?: (path: string) => Promise<string | undefined>;
  /** The server's own counters (connections now, refused or dropped by reason). */
  server?: () => { connections: number; monitors: number; refused: Record<string, number> };
}

export function status(ctx: ControlContext): Record<string, unknown> {
  const d = ctx.daemon;
  const idx = d.index;
  const st = idx?.stats();
  const q = d.phaseName === 'new' || idx === undefined ? undefined : d.queue;
  return {
    version: VERSION,
    pid: process.pid,
    phase: d.phaseName,
    startedAt: ctx.startedAt.toISOString(),
    uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 100) / 10,
    mode: ctx.info.mode,
    jobs: ctx.info.jobs,
    index: idx === undefined ? null : { source: idx.source, kind: idx.kind, kernelRelease: basename(ctx.info.modulesDir), modules: st!.modules, builtin: st!.builtin, aliases: st!.aliases },
    queue: { depth: q?.depth ?? 0, inFlight: d.inFlightModules(), stuck: q?.stuckModules ?? [] },
    counts: q?.counts ?? null,
    // lost counts kernel seqnums skipped (a bigint in the daemon): a JSON number like every other count; far below 2^53 in any machine's life.
    uevents: { received: d.stats.events, adds: d.stats.adds, rejected: d.stats.rejected, lost: Number(d.stats.lost) },
    resyncs: d.stats.resyncs,
    coldplugs: d.stats.coldplugs,
    reloads: d.stats.reloads,
    settled: d.settledFor(undefined),
    lastSettledAt: d.lastSettledAt ?? null,
    failed: ctx.history.failed(),
    control: { path: ctx.info.control, ...(ctx.server?.() ?? {}) },
  };
}

function settleTimeout(req: Request): number | Reply {
  const t = req.timeout ?? SETTLE_DEFAULT_S;
  if (typeof t !== 'number' || !(t >= 0 && t <= SETTLE_MAX_S)) return errorReply('E_PROTOCOL', `"timeout" takes seconds from 0 to ${SETTLE_MAX_S}`);
  return t * 1000;
}

async function why(ctx: ControlContext, query: string): Promise<Record<string, unknown>> {
  const h = ctx.history.why(query);
  const idx = ctx.daemon.index;
  // What the index answers now: for a modalias, its lookup; for a module
  // name, that module; for a devpath, the modaliases its requests carried,
  // or, when none did (a device that never sent one, or whose requests left
  // the history), its modalias in sysfs now.
  let now: unknown[] = [];
  if (idx !== undefined) {
    let queries = query.startsWith('/') ? ctx.history.modaliasesOf(query) : [query];
    if (queries.length === 0 && query.startsWith('/') && !query.split('/').includes('..')) {
      const m = await ctx.readModalias?.(query);
      if (m !== undefined && m !== '') queries = [m];
    }
    now = queries.map((q) => describe(idx, Buffer.from(q, 'utf8').toString('latin1')));
  }
  return { query, ...h, reached: h.totals.requests > 0 || h.totals.decisions > 0, index: now };
}

export function controlHandlers(ctx: ControlContext): Record<string, Handler> {
  return {
    status: { access: 'read', run: () => ({ ok: true, status: status(ctx) }) },
    settle: {
      access: 'read',
      run: async (req, conn) => {
        const ms = settleTimeout(req);
        if (typeof ms !== 'number') return ms;
        const gone = new AbortController();
        const forget = conn.onClose(() => gone.abort());
        const o = await ctx.daemon.waitSettled(ms, gone.signal).finally(forget);
        const target = o.target?.toString() ?? null;
        // The state when the waiter was answered (only microtasks ran since): the proof.
        // `stuck`: loads the load timeout gave up on, still in the kernel, and install commands left behind, still running; named, not waited for (see Daemon.pending).
        if (o.settled) {
          const state = ctx.daemon.pending();
          return { ok: true, settled: true, seqnum: target, stuck: state.stuck, state };
        }
        if (conn.closed) return errorReply('E_STOPPING', 'client gone');
        return errorReply('E_TIMEOUT', `not settled after ${ms / 1000} s`, { seqnum: target, pending: ctx.daemon.pending() });
      },
    },
    monitor: {
      access: 'read',
      run: (_req, conn) => {
        // Every record from now on, as its JSON line; a monitor that does
        // not read is dropped by the server's write bound, never waited for.
        // One stream per connection: a second monitor (pipelined behind the
        // first) would get every record twice.
        let stop = (): void => undefined;
        if (!conn.stream(() => stop())) return errorReply('E_PROTOCOL', 'this connection already streams records (one monitor per connection)');
        stop = ctx.tap.subscribe((l) => {
          if (!conn.sendLine(l)) stop();
        });
        return { ok: true, monitor: true };
      },
    },
    why: {
      access: 'read',
      run: async (req) => {
        const q = req.query;
        if (typeof q !== 'string' || q === '' || q.length > 4096) return errorReply('E_PROTOCOL', '"query" takes a devpath, modalias or module name (1 to 4096 characters)');
        return { ok: true, why: await why(ctx, (await ctx.devpathOf?.(q)) ?? q) };
      },
    },
    reload: {
      access: 'write',
      run: async () => {
        if (!ctx.daemon.running) return errorReply('E_FAILED', `the daemon is ${ctx.daemon.phaseName}, not running: nothing reloaded`);
        const ok = await ctx.daemon.reload();
        const idx = ctx.daemon.index;
        return ok
          ? { ok: true, reloaded: true, index: idx?.source, modules: idx?.stats().modules, reloads: ctx.daemon.stats.reloads }
          : errorReply('E_FAILED', 'reload failed: the index could not be read, the current one stays (see the log)');
      },
    },
  };
}
