/**
 * `hotplugd trigger`: write `add` (or `change`) to the uevent file of every
 * device under SYSFS/devices, or of those in the named subsystems, so that
 * the kernel announces them again (udevadm trigger --type=devices).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTROL_FLAGS, CONTROL_HELP, controlPaths, settle, settleTimeout } from '../control/client.js';
import { EXIT, HotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { TRIGGER_ACTIONS, type TriggerAction, triggerDevices } from '../sys/trigger.js';
import { type Io, parseFlags } from './common.js';

export const TRIGGER_HELP = `Usage: hotplugd trigger [--subsystem[-match] S]... [--action add|change] [--dry-run] [--verbose] [--sysfs DIR]
                        [--settle [--timeout S] [--control PATH]]

Make the kernel announce devices again, as "udevadm trigger
--type=devices" does: write the action to the uevent file of every device
under SYSFS/devices (parents first), or only of those whose subsystem is
one of the --subsystem values. The daemon then handles the uevents as any
others. Writing needs root.

  --subsystem S   only devices of subsystem S (the name of the device's
                  "subsystem" link: pci, usb, platform, ...); repeat for several;
                  --subsystem-match S is the same (udevadm's spelling)
  --action A      add (default) or change
  --dry-run       write nothing: print the uevent files it would write
  --verbose, -v   print each uevent file written
  --sysfs DIR     sysfs root (default /sys)
  --settle        then wait until the running daemon has handled the
                  uevents and loaded what they need ("hotplugd settle")
  --timeout S     with --settle: give up after S seconds (default 120)
${CONTROL_HELP}
  -h, --help      this text

Output: with --dry-run or --verbose one path per line on stdout and the
summary on stderr; otherwise the summary on stdout. Each failed write is
named on stderr with its errno (the first 10, then a count).
Exit codes: 0 every write done (or, with --dry-run, none attempted) and,
with --settle, the daemon settled; 1 some writes failed, no device of the
--subsystem values was found (named on stderr with the subsystems there
are), or not settled within the timeout, 100 usage error, 111 system error (SYSFS/devices unreadable, not
root, read-only /sys; with --settle: no daemon to connect to).
`;

/** Failed writes named one by one; past this, a count. */
const FAILURES_SHOWN = 10;

/** The subsystems this sysfs has (its bus/ and class/ entries), sorted; none when neither can be read. */
async function knownSubsystems(sysfs: string): Promise<string[]> {
  const names = new Set<string>();
  for (const d of ['bus', 'class']) {
    try {
      for (const n of await readdir(join(sysfs, d))) names.add(n);
    } catch {
      // no such directory: nothing to name
    }
  }
  return [...names].sort();
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export async function triggerCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    {
      subsystem: { type: 'string', multiple: true },
      'subsystem-match': { type: 'string', multiple: true },
      action: { type: 'string' },
      'dry-run': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      sysfs: { type: 'string' },
      settle: { type: 'boolean' },
      timeout: { type: 'string' },
      ...CONTROL_FLAGS,
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values.help) {
    io.stdout.write(TRIGGER_HELP);
    return EXIT.OK;
  }
  const action = (values.action ?? 'add') as TriggerAction;
  if (!TRIGGER_ACTIONS.includes(action)) throw new HotplugError('E_USAGE', `--action must be one of ${TRIGGER_ACTIONS.join(', ')} (got "${values.action}")`);
  const subsystems = [...(values.subsystem ?? []), ...(values['subsystem-match'] ?? [])];
  for (const s of subsystems) {
    if (s === '' || s.includes('/')) throw new HotplugError('E_USAGE', `--subsystem takes a subsystem name such as pci or usb (got "${s}")`);
  }
  const dryRun = values['dry-run'] === true;
  if (values.settle !== true && (values.timeout !== undefined || values.control !== undefined)) {
    throw new HotplugError('E_USAGE', '--timeout and --control go with --settle');
  }
  const timeout = values.settle === true ? settleTimeout(values.timeout) : 0;
  const listing = dryRun || values.verbose === true;
  const sysfs = values.sysfs ?? '/sys';
  const r = await triggerDevices(sysfs, {
    action,
    subsystems,
    dryRun,
    onDevice: (d) => {
      if (d.code === undefined && listing) io.stdout.write(`${printable(d.file)}\n`);
    },
  });
  let shown = 0;
  for (const f of r.failed) {
    if (shown++ < FAILURES_SHOWN) io.stderr.write(`hotplugd: ${printable(f.file)}: not written (${f.code})\n`);
  }
  if (r.failed.length > FAILURES_SHOWN) io.stderr.write(`hotplugd: ... and ${r.failed.length - FAILURES_SHOWN} more not written\n`);
  const byCode = new Map<string, number>();
  for (const f of r.failed) byCode.set(f.code!, (byCode.get(f.code!) ?? 0) + 1);
  const failed = r.failed.length === 0 ? '' : `, ${r.failed.length} failed (${[...byCode].map(([c, n]) => `${c} ${n}`).join(', ')})`;
  const skipped = r.unreadable.length === 0 ? '' : `; ${plural(r.unreadable.length, 'entry', 'entries')} not walked (first: ${printable(r.unreadable[0]!.path)} ${r.unreadable[0]!.code})`;
  const summary = dryRun
    ? `trigger: would write "${action}" to ${plural(r.devices, 'uevent file')} (dry run)${skipped}\n`
    : `trigger: "${action}" written to ${plural(r.written, 'uevent file')}${failed}${skipped}\n`;
  (listing ? io.stderr : io.stdout).write(summary);
  if (r.failed.length > 0) return EXIT.WRITE_FAILED;
  if (r.devices === 0 && subsystems.length > 0) {
    const known = await knownSubsystems(sysfs);
    const there = known.length > 0 ? ` (subsystems here: ${printable(known.join(' '))})` : '';
    io.stderr.write(`hotplugd: no device of subsystem ${printable(subsystems.join(', '))} under ${printable(sysfs)}/devices${there}\n`);
    return EXIT.NO_MATCH;
  }
  if (values.settle === true && !dryRun && !(await settle(controlPaths(values.control), timeout, io.stderr))) return EXIT.NO_MATCH;
  return EXIT.OK;
}
