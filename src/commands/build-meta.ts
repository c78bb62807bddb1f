/**
 * `hotplugd build-meta DIR -o meta.pb`: an index from the `.ko` files
 * themselves (their ELF .modinfo), written as Monogon-compatible meta.pb.
 */
import { encodeMeta } from '../core/index/meta/write.js';
import { ModuleIndex } from '../core/index/module-index.js';
import { EXIT, HotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { writeFileAtomic } from '../sys/atomic-write.js';
import { depmodParts } from '../sys/indexfs.js';
import { scanModuleTree } from '../sys/modtree.js';
import { type Io, parseFlags } from './common.js';

export const BUILD_META_HELP = `Usage: hotplugd build-meta DIR -o FILE [--from-depmod] [--release NAME]

Build meta.pb from a module tree: read the .modinfo section of every .ko
(.ko.gz, .ko.xz, .ko.zst too) under DIR for name=, alias=, depends= and
softdep=, and DIR/modules.builtin.modinfo (or modules.builtin) for built-in
modules. Module paths in the output are relative to DIR. The file holds
Monogon's radix tree, hotplugd's compiled matchers, which make the
daemon's start-up faster, and a CRC-32 that readers verify (files from
older hotplugd end with a SHA-256, still verified): "run" uses DIR/meta.pb
while DIR/modules.dep is not newer (after a fresh index cache). The file is
replaced atomically (a temporary file beside it, fsync, rename, fsync of the
directory): after a failure, such as a full disk, the old file is still
there, unchanged.

  -o, --output FILE  where to write meta.pb (required)
  --from-depmod      read DIR's depmod files (modules.alias, modules.dep, ...)
                     instead of the .ko files
  --release NAME     kernel release to record (default: DIR's last component)
  -h, --help         this text

Exit codes: 0 written, 100 usage error, 111 a module or the output could not
be read or written (the message names the file).
`;

export async function buildMetaCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { output: { type: 'string', short: 'o' }, release: { type: 'string' }, 'from-depmod': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help) {
    io.stdout.write(BUILD_META_HELP);
    return EXIT.OK;
  }
  const out = values.output;
  if (positionals.length !== 1 || out === undefined) {
    throw new HotplugError('E_USAGE', 'build-meta takes one module directory and -o FILE (see --help)');
  }
  const dir = positionals[0]!.replace(/\/+$/, '');
  const t0 = performance.now();
  const { parts, skipped } = values['from-depmod'] ? { parts: depmodParts(dir), skipped: [] } : await scanModuleTree(dir);
  for (const s of skipped) io.stderr.write(`${printable(`hotplugd: ${s.file}: skipped (${s.problem})`)}\n`);
  const bytes = await encodeMeta(parts, values.release ?? dir.slice(dir.lastIndexOf('/') + 1));
  writeFileAtomic(out, bytes);
  // Counted as the index counts them: a module only a built-in alias names is built in.
  const { loadable, builtin } = new ModuleIndex(parts).stats();
  io.stderr.write(
    `${printable(`hotplugd: wrote ${out}: ${loadable} modules, ${builtin} built-in, ${parts.aliases.count + parts.builtinAliases.count} aliases, ${bytes.length} bytes in ${Math.round(performance.now() - t0)} ms`)}\n`,
  );
  return EXIT.OK;
}
