/**
 * `hotplugd config`: the modprobe.d configuration and kernel command line
 * the daemon would use, as `modprobe -c` prints it (its order: blacklist,
 * install, remove, alias, options, softdep), each line with where it came
 * from. Lines that were not taken are named on stderr, one per line, as
 * libkmod warns about each.
 */
import { CMDLINE_SOURCE, type ConfigEntry, entryLine, sourceText } from '../core/config.js';
import { EXIT } from '../errors.js';
import { printable } from '../printable.js';
import { loadConfig, DEFAULT_CONFIG_DIRS } from '../sys/indexfs.js';
import { type Io, parseFlags } from './common.js';

export const CONFIG_HELP = `Usage: hotplugd config [--config-dir DIR]... [--cmdline FILE] [--json]

Print the configuration hotplugd uses, as modprobe -c prints it: blacklist,
install, remove, alias, options (modprobe.d, then the kernel command line)
and softdep lines, each followed by "# FILE:LINE" or "# kernel command
line". Lines that were not taken are named on stderr (FILE:LINE: why).

  --config-dir DIR  a modprobe.d directory (or file), which must exist;
                    repeat for several; '' for none (default: those of
                    ${DEFAULT_CONFIG_DIRS.join(' ')} that exist)
  --cmdline FILE    kernel command line (default /proc/cmdline if present;
                    '' to ignore; /dev/null for an empty one)
  --json            one JSON object: entries (kind, name, value, file, line)
                    and ignored (file, line, problem)
  -h, --help        this text

Exit codes: 0 printed (lines not taken are warnings), 100 usage error,
111 a named --config-dir or --cmdline could not be read.
`;

/** modprobe -c's order of kinds. */
const ORDER: ConfigEntry['kind'][] = ['blacklist', 'install', 'remove', 'alias', 'options', 'softdep'];

export async function configCommand(args: string[], io: Io): Promise<number> {
  const { values } = parseFlags(
    args,
    { 'config-dir': { type: 'string', multiple: true }, cmdline: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    false,
  );
  if (values.help) {
    io.stdout.write(CONFIG_HELP);
    return EXIT.OK;
  }
  const dirs = values['config-dir'];
  const cfg = loadConfig(dirs && dirs.length > 0 ? dirs : undefined, values.cmdline);
  // Within a kind, modprobe.d's lines in file order, then the kernel command line's (libkmod's order).
  const entries = ORDER.flatMap((kind) => [false, true].flatMap((cmdline) => cfg.entries.filter((e) => e.kind === kind && (e.file === CMDLINE_SOURCE) === cmdline)));
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ entries, ignored: cfg.warnings })}\n`);
    return EXIT.OK;
  }
  for (const e of entries) io.stdout.write(`${printable(entryLine(e))}\t# ${printable(sourceText(e))}\n`);
  for (const w of cfg.warnings) io.stderr.write(`hotplugd: ${printable(`${sourceText(w)}: ${w.problem}`)}\n`);
  return EXIT.OK;
}
