/**
 * hotplugd command line: dispatch to the commands in src/commands/ (cli.ts
 * is the entry point that loads this).
 */
import { buildMetaCommand } from './commands/build-meta.js';
import { closest, type Io, runCommand } from './commands/common.js';
import { matchCommand } from './commands/match.js';
import { EXIT } from './errors.js';
import { printable } from './printable.js';
import { type SignalSource } from './signals.js';
import { VERSION } from './version.js';

export const HELP = `Usage: hotplugd COMMAND [FLAGS]
       hotplugd --version

A udev-style hotplug daemon: kernel uevents -> libkmod-exact modalias matching
-> finit_module loads, one at a time by default (--jobs N: up to N at once),
one structured record per load.

Commands:
  run          the daemon: listen for uevents, coldplug /sys, load modules
  coldplug     walk /sys once and load what every device needs (--dry-run:
               only report); exit status 1 when a load failed
  match        which modules serve a MODALIAS (as modprobe -R)
  config       the modprobe.d and kernel command line configuration in use,
               each line with its file and line (as modprobe -c)
  build-meta   build a Monogon-compatible meta.pb from a tree of .ko files
  trigger      make the kernel announce devices again (write "add" to their
               uevent files, as udevadm trigger); exit status 1 when a write
               failed

Talking to the running daemon (its control socket, --control PATH):
  status       what it is doing: index, queue, counts, failed modules
  settle       wait until every uevent so far is handled and loads are done
  monitor      print its records live
  why          what it did about a DEVPATH, MODALIAS or MODULE, and why
  reload       reload index and configuration (as SIGHUP; root only)
  metrics      its Prometheus metrics (the text --metrics-listen serves)

"hotplugd COMMAND --help" describes each command and its exit codes.
Exit codes: 0 success, 1 nothing matched (match), a load or write failed
(coldplug, trigger), or the daemon refused or timed out (client commands),
100 usage error, 111 system error (index unreadable, cannot load modules, no
daemon to connect to, ...).

hotplugd ${VERSION}
`;

type Command = (args: string[], io: Io, signals?: SignalSource) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  match: async () => matchCommand,
  'build-meta': async () => buildMetaCommand,
  run: async () => (await import('./commands/run.js')).runDaemonCommand,
  coldplug: async () => (await import('./commands/coldplug.js')).coldplugCommand,
  trigger: async () => (await import('./commands/trigger.js')).triggerCommand,
  config: async () => (await import('./commands/config.js')).configCommand,
  status: async () => (await import('./commands/status.js')).statusCommand,
  settle: async () => (await import('./commands/settle.js')).settleCommand,
  monitor: async () => (await import('./commands/monitor.js')).monitorCommand,
  why: async () => (await import('./commands/why.js')).whyCommand,
  reload: async () => (await import('./commands/reload.js')).reloadCommand,
  metrics: async () => (await import('./commands/metrics.js')).metricsCommand,
};

/** Run one command; `signals` are the daemon's, caught before any import (see signals.ts). */
export async function main(argv: string[], io: Io, signals?: SignalSource): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(HELP);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.stdout.write(`hotplugd ${VERSION}\n`);
    return EXIT.OK;
  }
  const load = commands[name];
  if (!load) {
    const near = closest(name, Object.keys(commands));
    io.stderr.write(`hotplugd: unknown command "${printable(name)}"${near !== undefined ? ` (did you mean ${near}?)` : ''}; see "hotplugd --help" [E_USAGE]\n`);
    return EXIT.USAGE;
  }
  const cmd = await load();
  return runCommand(io, () => cmd(rest, io, signals), name);
}
