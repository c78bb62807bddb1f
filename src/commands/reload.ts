/**
 * `hotplugd reload`: what SIGHUP does, with the result as the answer.
 */
import { CLIENT_EXIT_HELP, CONTROL_FLAGS, CONTROL_HELP, controlPaths, errorLine, request } from '../control/client.js';
import { EXIT } from '../errors.js';
import { printable } from '../printable.js';
import { type Io, parseFlags } from './common.js';

export const RELOAD_HELP = `Usage: hotplugd reload [--control PATH]

Make the running daemon reload its index (choosing meta.pb or depmod's files
again), modprobe.d and the kernel command line, then walk /sys again, as
SIGHUP does; reloads asked for during one merge into one more. Prints the
index now in use; a reload that fails keeps the old index and exits 1.

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
  io.stdout.write(`${printable(`reloaded: ${String(reply.index)} (${String(reply.modules)} modules; reload ${String(reply.reloads)} since start)`)}\n`);
  return EXIT.OK;
}
