/**
 * src/preload.ts lists every module the daemon imports lazily (an upgrade
 * replaces the package's content-named chunks under a running daemon): each
 * dynamic import() in src/ is either listed there or named below with the
 * reason the daemon never needs it after start-up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { preloadDaemonCode } from '../../src/preload.js';

/** file (under src/) -> specifiers a running daemon does not import later. */
const NOT_FOR_THE_DAEMON: Record<string, { specifiers: string[]; why: string }> = {
  'cli.ts': { specifiers: ['./main.js'], why: 'the entry point, imported at start' },
  'main.ts': {
    specifiers: ['./commands/run.js', './commands/coldplug.js', './commands/trigger.js', './commands/status.js', './commands/settle.js', './commands/monitor.js', './commands/why.js', './commands/reload.js', './commands/metrics.js'],
    why: 'the command table: the daemon is the run command, imported at start; the others are separate processes of the new version',
  },
  'commands/run.ts': { specifiers: ['../sys/metrics-http.js'], why: 'imported before start-up when --metrics-listen is given, never later' },
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}
/** A specifier as src/preload.ts would write it: relative to src/, or a package name. */
function fromSrc(file: string, spec: string): string {
  if (!spec.startsWith('.')) return spec;
  const p = relative('src', join(dirname(file), spec));
  return p.startsWith('.') ? p : `./${p}`;
}

describe('preloadDaemonCode', () => {
  it('lists every dynamic import a running daemon can reach', () => {
    const listed = new Set([...readFileSync('src/preload.ts', 'utf8').matchAll(/import\('([^']+)'\)/g)].map((m) => m[1]!));
    const lazy: string[] = [];
    for (const file of sources('src')) {
      const rel = relative('src', file);
      if (rel === 'preload.ts') continue;
      for (const m of readFileSync(file, 'utf8').matchAll(/\bimport\(\s*(['"`])([^'"`]+)\1\s*\)/g)) {
        const spec = m[2]!;
        if (spec.startsWith('node:')) continue; // Node's built-ins are in the runtime binary, not files
        if (NOT_FOR_THE_DAEMON[rel]?.specifiers.includes(spec)) continue;
        lazy.push(fromSrc(file, spec));
      }
    }
    expect(lazy.length).toBeGreaterThan(2); // the scan finds the known ones (xz-decompress, write, metrics)
    expect(lazy.filter((s) => !listed.has(s))).toEqual([]);
  });

  it('imports them', async () => {
    await expect(preloadDaemonCode()).resolves.toBeUndefined();
  });
});
