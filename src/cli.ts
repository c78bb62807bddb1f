#!/usr/bin/env node
/**
 * hotplugd's entry point. For `run`, the daemon's signals are caught before
 * anything else is imported (signals.ts imports nothing): a SIGHUP during
 * start-up waits for the daemon instead of killing the process. Everything
 * else loads after that.
 */
import { CaughtSignals } from './signals.js';
import { printable } from './printable.js';

performance.mark('hotplugd:entry'); // start-up phases: the runtime has reached our code

const signals = process.argv[2] === 'run' ? new CaughtSignals() : undefined;
// A reader that went away (`hotplugd match ... | head`) ends the command quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  throw e;
});
const { main } = await import('./main.js');
performance.mark('hotplugd:imports');
const io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
try {
  const code = await main(process.argv.slice(2), io, signals);
  process.exitCode = code;
  if (signals !== undefined) {
    // The daemon closed what it opened; should anything still hold the event
    // loop (a read stuck in the kernel), do not outlive the answer by more than a second.
    setTimeout(() => process.exit(code), 1000).unref();
  }
} catch (e) {
  process.stderr.write(`${printable(`hotplugd: internal error: ${String(e)}`)}\n`);
  process.exitCode = 111;
}
