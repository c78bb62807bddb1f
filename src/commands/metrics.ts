/**
 * `hotplugd metrics`: the running daemon's Prometheus metrics, through the
 * control socket (the same text `--metrics-listen` serves over HTTP).
 */
import { CLIENT_EXIT_HELP, CONTROL_FLAGS, CONTROL_HELP, controlPaths, errorLine, request } from '../control/client.js';
import { EXIT } from '../errors.js';
import { type Io, parseFlags } from './common.js';

export const METRICS_HELP = `Usage: hotplugd metrics [--control PATH]

Print the running daemon's metrics in the Prometheus text format (0.0.4): the
same text "run --metrics-listen ADDR:PORT" serves at /metrics. For a node
exporter's textfile collector: hotplugd metrics > DIR/hotplugd.prom.$$ && mv
DIR/hotplugd.prom.$$ DIR/hotplugd.prom.

${CONTROL_HELP}
  -h, --help  this text

Allowed for root, the daemon's own user, and members of its --control-group.
${CLIENT_EXIT_HELP}
`;

export async function metricsCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(args, { ...CONTROL_FLAGS, help: { type: 'boolean', short: 'h' } }, false);
  if (values.help) {
    io.stdout.write(METRICS_HELP);
    return EXIT.OK;
  }
  const reply = await request(controlPaths(values.control), { cmd: 'metrics' });
  if (reply.ok !== true || typeof reply.text !== 'string') {
    io.stderr.write(errorLine({ error: reply.error ?? 'no metrics in the answer', code: reply.code ?? 'E_PROTOCOL' }));
    return EXIT.NO_MATCH;
  }
  io.stdout.write(reply.text);
  return EXIT.OK;
}
