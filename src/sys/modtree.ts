/**
 * Scanning a tree of module files for `hotplugd build-meta`: each `.ko`
 * (compressed or not) is read and its .modinfo parsed; files that cannot be
 * read or parsed are skipped and reported, the rest make the index
 * (core/index/from-modinfo.ts assembles it).
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { compressionOf, decompress, MAX_MODULE_BYTES } from '../core/decompress.js';
import { moduleNameFromPath } from '../core/module-file.js';
import { readModinfo } from '../core/index/elf.js';
import { indexFromModinfo } from '../core/index/from-modinfo.js';
import { type IndexParts } from '../core/index/module-index.js';
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

/** An optional index file of the tree, as latin1 text. */
function readOptional(file: string): { file: string; text: string } | undefined {
  return existsSync(file) ? { file, text: readBoundedSync(file, INDEX_FILE_MAX).toString('latin1') } : undefined;
}

export async function scanModuleTree(dir: string): Promise<{ parts: IndexParts; skipped: Skipped[] }> {
  const files = await listModules(dir);
  const skipped: Skipped[] = [];
  const infos = await mapLimit(files, 16, async (file) => {
    try {
      // Regular files only, at most the decompressed cap even when compressed.
      const raw = await readBounded(file, MAX_MODULE_BYTES);
      const elf = await decompress(raw, compressionOf(file), file);
      return { path: relative(dir, file), info: readModinfo(elf, file) };
    } catch (e) {
      skipped.push({ file, problem: (e as Error).message });
      return null;
    }
  });
  const builtinModinfo = readOptional(join(dir, 'modules.builtin.modinfo'));
  const builtin = readOptional(join(dir, 'modules.builtin'));
  const parts = indexFromModinfo({ dir, modules: infos.filter((r) => r !== null), builtin, builtinModinfo });
  return { parts, skipped };
}
