/**
 * `hotplugd why`: what the running daemon did about a device, a modalias or
 * a module, from its memory, and what its index would answer now.
 */
import { CLIENT_EXIT_HELP, CONTROL_FLAGS, CONTROL_HELP, controlPaths, errorLine, request } from '../control/client.js';
import { type ConfigEntry, entryLine, sourceText } from '../core/config.js';
import { EXIT, HotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { type Io, parseFlags } from './common.js';

export const WHY_HELP = `Usage: hotplugd why [--control PATH] [--json] DEVPATH|MODALIAS|MODULE

Ask the running daemon which requests (uevents, coldplug walks) named a
device (/devices/..., /sys/devices/... or a link such as
/sys/class/net/eth0), a MODALIAS or a module, when, and what was decided for each
module (result, errno, reason) — or that none ever reached it — and what
its current index answers now (modules in load order, blacklisted,
built-in, install commands). The daemon remembers the last 4096 requests
and the last 4096 module records; the latest 20 of each that match are shown.

  --json      the daemon's answer as one JSON object
${CONTROL_HELP}
  -h, --help  this text

Allowed for root, the daemon's own user, and members of its --control-group.
${CLIENT_EXIT_HELP}
`;

type Obj = Record<string, unknown>;

function fields(o: Obj, keys: string[]): string {
  return keys
    .filter((k) => o[k] !== undefined && o[k] !== null)
    .map((k) => `${k}=${typeof o[k] === 'string' ? (o[k]) : JSON.stringify(o[k])}`)
    .join(' ');
}

export function whyLines(w: Obj): string[] {
  const out: string[] = [];
  const totals = w.totals as { requests: number; decisions: number };
  const requests = w.requests as Obj[];
  const decisions = w.decisions as Obj[];
  if (w.reached !== true) out.push(`${String(w.query)}: no uevent or coldplug request and no module record named it (since the daemon started, within the last 4096 of each)`);
  if (requests.length > 0) {
    out.push(`requests (${totals.requests}${totals.requests > requests.length ? `, latest ${requests.length}` : ''}):`);
    for (const r of requests) out.push(`  ${String(r.time)} ${String(r.origin).padEnd(8)} ${fields(r, ['devpath', 'modalias', 'seqnum'])}`);
  }
  if (decisions.length > 0) {
    out.push(`decisions (${totals.decisions}${totals.decisions > decisions.length ? `, latest ${decisions.length}` : ''}):`);
    for (const d of decisions) out.push(`  ${String(d.time)} ${String(d.result).padEnd(15)} ${String(d.module).padEnd(20)} ${fields(d, ['code', 'errno', 'reason', 'role', 'dependencyOf', 'origin', 'devpath', 'modalias'])}`);
  }
  const now = w.index as { modalias: string; modules: Obj[] }[];
  if (now.length === 0) out.push('index now: (no modalias known for it)');
  for (const q of now) {
    if (q.modules.length === 0) out.push(`index now: ${q.modalias}: no module`);
    for (const m of q.modules) {
      const flags = [m.builtin === true ? 'built-in' : '', m.blacklisted === true ? 'blacklisted' : ''].filter((x) => x !== '').join(', ');
      out.push(`index now: ${q.modalias} -> ${String(m.name)}${flags !== '' ? ` (${flags})` : ''}: load order ${(m.loadOrder as string[]).join(' ')}${m.installCommands !== undefined ? `; install commands ${JSON.stringify(m.installCommands)}` : ''}`);
      // Where each configuration line behind that answer comes from (blacklist, options, softdep, install).
      for (const c of (m.configuredBy as ConfigEntry[] | undefined) ?? []) out.push(`  from ${sourceText(c)}: ${entryLine(c)}`);
    }
  }
  return out.map(printable);
}

export async function whyCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...CONTROL_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    io.stdout.write(WHY_HELP);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new HotplugError('E_USAGE', 'give one DEVPATH, MODALIAS or MODULE');
  const reply = await request(controlPaths(values.control), { cmd: 'why', query: positionals[0] });
  if (reply.ok !== true) {
    io.stderr.write(errorLine(reply));
    return EXIT.NO_MATCH;
  }
  io.stdout.write(values.json ? `${JSON.stringify(reply.why)}\n` : `${whyLines(reply.why as Obj).join('\n')}\n`);
  return EXIT.OK;
}
