/**
 * `hotplugd status`: what the running daemon is doing, from its control socket.
 */
import { CLIENT_EXIT_HELP, CONTROL_FLAGS, CONTROL_HELP, controlPaths, errorLine, request } from '../control/client.js';
import { EXIT } from '../errors.js';
import { printable } from '../printable.js';
import { type Io, parseFlags } from './common.js';

export const STATUS_HELP = `Usage: hotplugd status [--control PATH] [--json]

Ask the running daemon: uptime, index (source, kernel release, modules,
aliases), mode and jobs, queue depth and the modules in flight, counts by
result, uevents received/rejected/lost, resyncs, reloads, when it last
settled, and the modules that failed with their errno.

  --json      the daemon's answer as one JSON object
${CONTROL_HELP}
  -h, --help  this text

Allowed for root, the daemon's own user, and members of its --control-group.
${CLIENT_EXIT_HELP}
`;

type Obj = Record<string, unknown>;

export function statusLines(st: Obj): string[] {
  const idx = st.index as Obj | null;
  const q = st.queue as { depth: number; inFlight: string[] };
  const c = (st.counts ?? {}) as Obj;
  const u = st.uevents as Obj;
  const failed = st.failed as { module: string; errno?: number; code?: string; time?: string }[];
  const rows: [string, string][] = [
    ['pid', `${String(st.pid)} (hotplugd ${String(st.version)})`],
    ['phase', String(st.phase)],
    ['uptime', `${String(st.uptimeS)} s (since ${String(st.startedAt)})`],
    ['mode', `${String(st.mode)}, jobs ${String(st.jobs)}`],
    ['index', idx === null ? '-' : `${String(idx.kind)} ${String(idx.source)} (${String(idx.kernelRelease)}): ${String(idx.modules)} modules, ${String(idx.aliases)} aliases`],
    ['queue', `${q.depth} queued, in flight: ${q.inFlight.length > 0 ? q.inFlight.join(' ') : '-'}`],
    ['requests', `${String(c.requests ?? 0)} (${String(c.merged ?? 0)} merged)`],
    ['results', `loaded ${String(c.loaded ?? 0)}, failed ${String(c.failed ?? 0)}, skipped ${String(c.skipped ?? 0)}, blacklisted ${String(c.blacklisted ?? 0)}, would-load ${String(c.wouldLoad ?? 0)}, install commands ${String(c.installCommands ?? 0)}`],
    ['uevents', `received ${String(u.received)}, with a modalias ${String(u.adds)}, rejected ${String(u.rejected)}, lost ${String(u.lost)}`],
    ['walks', `coldplug ${String(st.coldplugs)}, resyncs ${String(st.resyncs)}, reloads ${String(st.reloads)}`],
    ['settled', `${st.settled === true ? 'yes' : 'no'}, last ${String(st.lastSettledAt ?? 'never')}`],
    ['failed', failed.length === 0 ? '-' : `${failed.length} module${failed.length === 1 ? '' : 's'}`],
  ];
  const lines = rows.map(([k, v]) => `${k.padEnd(10)}${printable(v)}`);
  for (const f of failed) lines.push(`  ${printable(`${f.module}: ${f.code ?? '?'} (errno ${f.errno ?? '?'}) at ${f.time ?? '?'}`)}`);
  return lines;
}

export async function statusCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...CONTROL_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(STATUS_HELP);
    return EXIT.OK;
  }
  const reply = await request(controlPaths(values.control), { cmd: 'status' });
  if (reply.ok !== true) {
    io.stderr.write(errorLine(reply));
    return EXIT.NO_MATCH;
  }
  io.stdout.write(values.json ? `${JSON.stringify(reply.status)}\n` : `${statusLines(reply.status as Obj).join('\n')}\n`);
  return EXIT.OK;
}
