/**
 * `hotplugd reload`: what SIGHUP does, with the result as the answer.
 */
import { CLIENT_EXIT_HELP, CONTROL_FLAGS, CONTROL_HELP, controlPaths, errorLine, request } from '../control/client.js';
import { sourceText } from '../core/config.js';
import { type LineWarning } from '../core/index/depmod.js';
import { EXIT } from '../errors.js';
import { printable } from '../printable.js';
import { type Io, parseFlags } from './common.js';

export const RELOAD_HELP = `Usage: hotplugd reload [--control PATH]

Make the running daemon reload its index (choosing meta.pb or depmod's files
again), modprobe.d and the kernel command line, then walk /sys again, as
SIGHUP does; reloads asked for during one merge into one more. Prints the
module directory and what changed (modules, aliases, configuration lines),
and names each line that was not taken on stderr (FILE:LINE: why); a reload
that fails keeps the old index and configuration, says why, and exits 1.

${CONTROL_HELP}
  -h, --help  this text

Root only.
${CLIENT_EXIT_HELP}
`;

export async function reloadCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...CONTROL_FLAGS, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(RELOAD_HELP);
    return EXIT.OK;
  }
  const reply = await request(controlPaths(values.control), { cmd: 'reload' });
  if (reply.ok !== true) {
    io.stderr.write(errorLine(reply));
    return EXIT.NO_MATCH;
  }
  const count = (v: unknown): string => {
    const c = v as { before?: number; after?: number } | undefined;
    return c?.before === c?.after ? String(c?.after) : `${String(c?.before)} -> ${String(c?.after)}`;
  };
  io.stdout.write(
    `${printable(`reloaded ${String(reply.modulesDir ?? reply.index)}: modules ${count(reply.modules)}, aliases ${count(reply.aliases)}, configuration lines ${count(reply.config)} (reload ${String(reply.reloads)} since start)`)}\n`,
  );
  // Every line not taken, as libkmod names each: FILE:LINE: why.
  for (const w of (reply.ignored as LineWarning[] | undefined) ?? []) io.stderr.write(`hotplugd: ${printable(`${sourceText(w)}: ${w.problem}`)}\n`);
  return EXIT.OK;
}
