/** A small depmod directory cut from the Debian fixture, for tests that build many indexes. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureLines } from './helpers.js';

const nameOf = (path: string): string => path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_');

/**
 * modules.dep and modules.alias for `modules` and their dependencies, at most
 * `aliasesPerModule` aliases each. Returns the directory and queries that
 * reach every alias kept (a `*` filled with "0", a bracket with its first byte)
 * plus some that match nothing.
 */
export function smallDepmodDir(modules: readonly string[], aliasesPerModule: number): { dir: string; queries: string[] } {
  const depLines = new Map(fixtureLines('modules.dep').map((l) => [nameOf(l.slice(0, l.indexOf(':'))), l]));
  const keep = new Set<string>();
  const todo = [...modules];
  while (todo.length > 0) {
    const m = todo.pop()!;
    if (keep.has(m)) continue;
    const line = depLines.get(m);
    if (line === undefined) throw new Error(`${m} is not in the fixture`);
    keep.add(m);
    for (const d of line.slice(line.indexOf(':') + 1).trim().split(' ').filter(Boolean)) todo.push(nameOf(d));
  }
  const perModule = new Map<string, number>();
  const aliases: string[] = [];
  const queries: string[] = [];
  for (const l of fixtureLines('modules.alias')) {
    const [, pattern, module] = l.split(' ');
    if (pattern === undefined || module === undefined || !keep.has(module)) continue;
    const n = perModule.get(module) ?? 0;
    if (n >= aliasesPerModule) continue;
    perModule.set(module, n + 1);
    aliases.push(l);
    queries.push(pattern.replace(/\[(.)[^\]]*\]/g, '$1').replace(/\*/g, '0').replace(/\?/g, 'x'));
  }
  queries.push('pci:v00001234d00005678sv0sd0bc01sc06i01', 'usb:v0000p0000', 'virtio:d00000002v00001AF4', ...keep);
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-small-'));
  writeFileSync(join(dir, 'modules.dep'), `${[...depLines.entries()].filter(([n]) => keep.has(n)).map(([, l]) => l).join('\n')}\n`);
  writeFileSync(join(dir, 'modules.alias'), `${aliases.join('\n')}\n`);
  return { dir, queries };
}
