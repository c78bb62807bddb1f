/**
 * The depmod reader: depmod's text files (modules.dep, modules.alias,
 * modules.builtin, modules.builtin.modinfo, modules.softdep, modules.symbols)
 * as the assembler's input. Pure: the texts are handed in (sys/indexfs.ts
 * reads them).
 */
import { type AliasStream, assembleIndex } from './assemble.js';
import { forEachAlias, type LineWarning, parseBuiltinFile, parseBuiltinModinfo, parseDepFile, parseSoftdepFile } from './depmod.js';
import { type IndexParts } from './module-index.js';

export interface DepmodTexts {
  /** Directory the texts came from, for messages. */
  dir: string;
  alias: string;
  dep: string;
  builtin?: string | undefined;
  softdep?: string | undefined;
  builtinModinfo?: string | undefined;
  /** modules.symbols, read on demand. */
  symbols?: (() => string | undefined) | undefined;
}

export function indexFromDepmod(t: DepmodTexts): IndexParts {
  const warnings: LineWarning[] = [];
  const depFile = `${t.dir}/modules.dep`;
  const aliasFile = `${t.dir}/modules.alias`;
  const builtinFile = `${t.dir}/modules.builtin`;
  const modinfoFile = `${t.dir}/modules.builtin.modinfo`;
  const symbolsFile = `${t.dir}/modules.symbols`;
  const readSymbols = t.symbols;
  return assembleIndex({
    source: t.dir,
    warnings,
    depFile,
    depsBy: 'path',
    // parseDepFile keeps only lines whose dependencies are module paths.
    loadable: () => parseDepFile(t.dep, depFile, warnings),
    builtin: () => (t.builtin === undefined ? undefined : { file: builtinFile, names: parseBuiltinFile(t.builtin, builtinFile, warnings) }),
    builtinModinfo: () => (t.builtinModinfo === undefined ? undefined : { file: modinfoFile, ...parseBuiltinModinfo(t.builtinModinfo, modinfoFile, warnings) }),
    aliases: { file: aliasFile, sizeHint: t.alias.length >> 2, forEach: (each) => forEachAlias(t.alias, aliasFile, warnings, each) },
    softdeps: () => (t.softdep === undefined ? new Map() : parseSoftdepFile(t.softdep, `${t.dir}/modules.softdep`, warnings)),
    symbols:
      readSymbols === undefined
        ? undefined
        : () => {
            const text = readSymbols();
            if (text === undefined) return undefined;
            return { file: symbolsFile, sizeHint: text.length >> 2, forEach: (each) => forEachAlias(text, symbolsFile, warnings, each) };
          },
  });
}

/** modules.symbols as an alias stream, read by `read` when first asked (symbolsLoader, for the index cache). */
export function symbolsStream(dir: string, read: () => string | undefined, warnings: LineWarning[]): () => AliasStream | undefined {
  const file = `${dir}/modules.symbols`;
  return () => {
    const text = read();
    if (text === undefined) return undefined;
    return { file, sizeHint: text.length >> 2, forEach: (each) => forEachAlias(text, file, warnings, each) };
  };
}
