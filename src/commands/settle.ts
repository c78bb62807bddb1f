/**
 * `hotplugd settle`: wait until the daemon has handled every uevent the
 * kernel had emitted at the call and its queue is idle (udevadm settle).
 */
import { CONTROL_FLAGS, CONTROL_HELP, controlPaths, settle, settleTimeout } from '../control/client.js';
import { EXIT } from '../errors.js';
import { type Io, parseFlags } from './common.js';

export const SETTLE_HELP = `Usage: hotplugd settle [--control PATH] [--timeout S]

Wait until the running daemon has handled every uevent the kernel had
emitted when settle was called (/sys/kernel/uevent_seqnum, read by the
daemon at the call), no /sys walk runs (start-up coldplug, a resync after
lost events, a reload) and nothing is queued or loading. Seqnums the daemon
never receives (events of other network namespaces, lost events) count as
handled once the resync walk they cause is done. Where the kernel's seqnum
cannot be read, settle waits for the walk and the queue only. Loads the
daemon's load timeout gave up on (a driver hung in its init) do not hold
settle: they are named on stderr ("still inside the kernel").

  --timeout S  give up after S seconds (default 120, as udevadm settle; 0:
               answer at once, for readiness probes); prints what is pending
${CONTROL_HELP}
  -h, --help   this text

Allowed for root, the daemon's own user, and members of its --control-group.
Exit codes: 0 settled, 1 not settled within the timeout (or refused), 100
usage error, 111 cannot connect (no daemon listens on the path tried).
`;

export async function settleCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...CONTROL_FLAGS, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(SETTLE_HELP);
    return EXIT.OK;
  }
  return (await settle(controlPaths(values.control), settleTimeout(values.timeout), io.stderr)) ? EXIT.OK : EXIT.NO_MATCH;
}
