/**
 * `hotplugd monitor`: every record the running daemon writes, live, until
 * interrupted (udevadm monitor).
 */
import { CONTROL_FLAGS, CONTROL_HELP, connectControl, controlPaths, errorLine, readLines } from '../control/client.js';
import { EXIT } from '../errors.js';
import { humanLine } from '../log-format.js';
import { type Io, parseFlags } from './common.js';

export const MONITOR_HELP = `Usage: hotplugd monitor [--control PATH] [--json]

Print every record the running daemon writes from now on, one line each, in
the terminal log's format (--json: the JSON lines), until interrupted
(Ctrl-C). Several monitors may run at once; one that does not keep up (over
1 MiB unread) is dropped by the daemon with a last line saying so, and
loading is never slowed for it.

  --json      JSON lines, as the daemon logs them
${CONTROL_HELP}
  -h, --help  this text

Allowed for root, the daemon's own user, and members of its --control-group.
Exit codes: 0 interrupted or the daemon stopped, 1 refused or dropped, 100
usage error, 111 cannot connect (no daemon listens on the path tried).
`;

export async function monitorCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...CONTROL_FLAGS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(MONITOR_HELP);
    return EXIT.OK;
  }
  const s = await connectControl(controlPaths(values.control));
  const tty = (io.stdout as { isTTY?: boolean }).isTTY === true;
  let code: number = EXIT.OK;
  let started = false;
  const interrupt = (): void => void s.destroy();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const done = readLines(s, (obj) => {
    if (!started) {
      started = true;
      if (obj.ok === true) return true;
    }
    if (obj.ok === false && !('level' in obj)) {
      io.stderr.write(errorLine(obj));
      code = EXIT.NO_MATCH;
      return false;
    }
    io.stdout.write(values.json ? `${JSON.stringify(obj)}\n` : `${humanLine(obj, tty)}\n`);
    return true;
  });
  s.write(`${JSON.stringify({ cmd: 'monitor' })}\n`);
  await done;
  process.removeListener('SIGINT', interrupt);
  process.removeListener('SIGTERM', interrupt);
  return code;
}
