/**
 * Scanning a tree of module files for `hotplugd build-meta`: each `.ko`
 * (compressed or not) is read and its .modinfo parsed; files that cannot be
 * read or parsed are skipped and reported, the rest make the index.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { checkNoCycles, ModuleTable } from '../core/build-index.js';
import { compressionOf, decompress, MAX_MODULE_BYTES } from '../core/decompress.js';
import { type LineWarning, moduleNameFromPath, parseBuiltinFile, parseBuiltinModinfo, parseSoftdepArgs, type SoftdepSpec, underscores } from '../core/depmod.js';
import { readModinfo } from '../core/elf.js';
import { ClassTable } from '../core/glob.js';
import { compileAliases, type IndexParts } from '../core/index.js';
import { mapLimit } from './concurrency.js';
import { INDEX_FILE_MAX, readBounded, readBoundedSync } from './readfile.js';

export interface Skipped {
  file: string;
  problem: string;
}

async function listModules(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && moduleNameFromPath(e.name) !== null) out.push(full);
    }
  };
  await walk(dir);
  return out.sort();
}

export async function scanModuleTree(dir: string): Promise<{ parts: IndexParts; skipped: Skipped[] }> {
  const files = await listModules(dir);
  const skipped: Skipped[] = [];
  const infos = await mapLimit(files, 16, async (file) => {
    try {
      // Regular files only, at most the decompressed cap even when compressed.
      const raw = await readBounded(file, MAX_MODULE_BYTES);
      const elf = await decompress(raw, compressionOf(file), file);
      return { file, info: readModinfo(elf, file) };
    } catch (e) {
      skipped.push({ file, problem: (e as Error).message });
      return null;
    }
  });
  const warnings: LineWarning[] = [];
  const table = new ModuleTable();
  const softdeps = new Map<string, SoftdepSpec>();
  const aliasLines: { pattern: string; module: string }[] = [];
  const loaded: { index: number; depends: string[] }[] = [];
  for (const r of infos) {
    if (r === null) continue;
    const fromPath = moduleNameFromPath(r.file)!;
    const name = r.info.name !== undefined ? underscores(r.info.name) : fromPath;
    const index = table.add(name, relative(dir, r.file), false);
    loaded.push({ index, depends: r.info.depends });
    for (const a of r.info.aliases) aliasLines.push({ pattern: a, module: name });
    for (const s of r.info.softdeps) {
      if (!softdeps.has(name)) softdeps.set(name, parseSoftdepArgs(s.trim().split(/\s+/)));
    }
  }
  let builtinAliases: { pattern: string; module: string }[] = [];
  const modinfoFile = join(dir, 'modules.builtin.modinfo');
  const builtinFile = join(dir, 'modules.builtin');
  if (existsSync(modinfoFile)) {
    const info = parseBuiltinModinfo(readBoundedSync(modinfoFile, INDEX_FILE_MAX).toString('latin1'), modinfoFile, warnings);
    for (const n of info.names) table.addBuiltin(n, modinfoFile, warnings);
    builtinAliases = info.aliases;
  }
  if (existsSync(builtinFile)) {
    for (const n of parseBuiltinFile(readBoundedSync(builtinFile, INDEX_FILE_MAX).toString('latin1'), builtinFile, warnings)) table.addBuiltin(n, builtinFile, warnings);
  }
  for (const { index, depends } of loaded) {
    // A dependency no file provides stays in the index without a path: loading it fails with a record.
    table.modules[index]!.deps = depends.map((d) => table.add(d, null, false));
  }
  checkNoCycles(table.modules, dir);
  const classes = new ClassTable();
  const moduleIndex = (n: string): number => table.add(n, null, false);
  return {
    parts: {
      modules: table.modules,
      aliases: compileAliases(aliasLines, moduleIndex, classes, dir, warnings),
      builtinAliases: compileAliases(builtinAliases, moduleIndex, classes, modinfoFile, warnings),
      classes,
      softdeps,
      warnings,
      source: dir,
    },
    skipped,
  };
}
