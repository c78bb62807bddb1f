/**
 * `hotplugd match`: which modules serve a MODALIAS, as `modprobe -R` answers.
 */
import { createInterface } from 'node:readline';
import { EXIT, HotplugError } from '../errors.js';
import { describe } from '../core/explain.js';
import { type ModuleIndex } from '../core/index/module-index.js';
import { loadIndexWithCache } from '../sys/indexfs.js';
import { INDEX_FLAGS, INDEX_HELP, indexLocation, type Io, parseFlags, summarizeWarnings, toBytes } from './common.js';
import { printable } from '../printable.js';

export const MATCH_HELP = `Usage: hotplugd match [INDEX FLAGS] [--json] MODALIAS...
       hotplugd match [INDEX FLAGS] --stdin

Print the modules that serve each MODALIAS, one per line, as modprobe -R does
(libkmod's lookup order; every matching module, not the first); a MODALIAS
that no module serves is named on stderr. A name is a built-in module only
when modules.builtin lists it, as for modprobe: names that
modules.builtin.modinfo lists only for their parameters (apparmor, random,
printk, ...) are no module.

  --json     one JSON object per MODALIAS: each module's path, built-in and
             blacklisted flags, options, the dependency load order, and
             installCommands: for each module of that order that has a
             modprobe.d install command, the command run instead of loading
             it ($CMDLINE_OPTS substituted), as modprobe --show-depends lists
  --stdin    read one query per line; print "<query>\\t<modules separated by
             spaces>" per query (empty after the tab when nothing matches)
  -h, --help this text

${INDEX_HELP}

Exit codes: 0 something matched (always 0 with --stdin), 1 nothing matched,
100 usage error, 111 the index could not be read.
`;

export async function matchCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...INDEX_FLAGS, json: { type: 'boolean' }, stdin: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) {
    io.stdout.write(MATCH_HELP);
    return EXIT.OK;
  }
  if (!values.stdin && positionals.length === 0) throw new HotplugError('E_USAGE', 'give at least one MODALIAS, or --stdin');
  // Read-only: a trusted cache is read, none is ever written or created.
  const loaded = loadIndexWithCache(indexLocation(values));
  const index = loaded.index;
  const problem = loaded.cache?.problem;
  if (problem !== undefined) io.stderr.write(`hotplugd: ${printable(`${loaded.cache!.file}: index cache not used: ${problem.problem}`)}\n`);
  for (const w of summarizeWarnings(index)) io.stderr.write(`hotplugd: ${w}\n`);
  return answer(index, values, positionals, io);
}

async function answer(index: ModuleIndex, values: { json?: boolean | undefined; stdin?: boolean | undefined }, positionals: string[], io: Io): Promise<number> {
  if (values.stdin) {
    const rl = createInterface({ input: io.stdin, crlfDelay: Infinity });
    let buf = '';
    for await (const line of rl) {
      const q = toBytes(line);
      buf += `${printable(line)}\t${printable(index.lookup(q).names.join(' '))}\n`;
      if (buf.length > 65536) {
        io.stdout.write(buf);
        buf = '';
      }
    }
    io.stdout.write(buf);
    return EXIT.OK;
  }
  let any = false;
  for (const q of positionals) {
    if (values.json) {
      const d = describe(index, toBytes(q)) as { modules: unknown[] };
      any ||= d.modules.length > 0;
      io.stdout.write(`${JSON.stringify(d)}\n`);
    } else {
      const names = index.lookup(toBytes(q)).names;
      any ||= names.length > 0;
      for (const n of names) io.stdout.write(`${printable(n)}\n`);
      // As modprobe -R: "FATAL: Module apparmor not found in directory /lib/modules/…".
      if (names.length === 0) io.stderr.write(`${printable(`hotplugd: module ${q} not found in ${index.kind === 'depmod' ? 'directory ' : ''}${index.source}`)}\n`);
    }
  }
  return any ? EXIT.OK : EXIT.NO_MATCH;
}
