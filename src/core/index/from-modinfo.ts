/**
 * The .ko tree reader (`hotplugd build-meta`): each module file's `.modinfo`
 * (elf.ts) and the tree's modules.builtin and modules.builtin.modinfo as the
 * assembler's input. Pure: sys/modtree.ts walks the tree and reads the files.
 */
import { underscores } from '../glob.js';
import { moduleNameFromPath } from '../module-file.js';
import { assembleIndex } from './assemble.js';
import { type AliasLine, type LineWarning, parseBuiltinFile, parseBuiltinModinfo, parseSoftdepArgs, type SoftdepSpec } from './depmod.js';
import { type Modinfo } from './elf.js';
import { type IndexParts } from './module-index.js';

export interface ModuleTree {
  /** The tree's directory, for messages. */
  dir: string;
  /** Each module file read, in path order: its path relative to `dir` and its modinfo. */
  modules: readonly { path: string; info: Modinfo }[];
  builtin?: { file: string; text: string } | undefined;
  builtinModinfo?: { file: string; text: string } | undefined;
}

export function indexFromModinfo(tree: ModuleTree): IndexParts {
  const warnings: LineWarning[] = [];
  const softdeps = new Map<string, SoftdepSpec>();
  const aliasLines: AliasLine[] = [];
  const { builtin, builtinModinfo } = tree;
  return assembleIndex({
    source: tree.dir,
    warnings,
    depFile: tree.dir,
    depsBy: 'name',
    loadable: () =>
      tree.modules.map(({ path, info }) => {
        // The module's own `name=` wins over its file name.
        const name = info.name !== undefined ? underscores(info.name) : moduleNameFromPath(path)!;
        for (const pattern of info.aliases) aliasLines.push({ pattern, module: name });
        for (const s of info.softdeps) if (!softdeps.has(name)) softdeps.set(name, parseSoftdepArgs(s.trim().split(/\s+/)));
        return { name, path, deps: info.depends, line: 0 };
      }),
    builtin: () => (builtin === undefined ? undefined : { file: builtin.file, names: parseBuiltinFile(builtin.text, builtin.file, warnings) }),
    builtinModinfo: () =>
      builtinModinfo === undefined ? undefined : { file: builtinModinfo.file, ...parseBuiltinModinfo(builtinModinfo.text, builtinModinfo.file, warnings) },
    aliases: { file: tree.dir, sizeHint: 1024, forEach: (each) => aliasLines.forEach((a) => each(a.pattern, a.module)) },
    softdeps: () => softdeps,
  });
}
