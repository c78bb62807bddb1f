/**
 * An upgrade replaces the package's content-named chunks under a running
 * daemon, and Node checks a module's file again at every import() call: so
 * every dynamic import() in src/ a running daemon can reach is a core/lazy.ts
 * loader (`export const loadX = lazy(() => import('...'))`), called once by
 * src/preload.ts, or named below with the reason the daemon never needs it
 * after start-up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lazy } from '../../src/core/lazy.js';
import { preloadDaemonCode } from '../../src/preload.js';

/** file (under src/) -> specifiers a running daemon does not import later. */
const NOT_FOR_THE_DAEMON: Record<string, { specifiers: string[]; why: string }> = {
  'cli.ts': { specifiers: ['./main.js'], why: 'the entry point, imported at start' },
  'main.ts': {
    specifiers: ['./commands/run.js', './commands/coldplug.js', './commands/trigger.js', './commands/config.js', './commands/status.js', './commands/settle.js', './commands/monitor.js', './commands/why.js', './commands/reload.js', './commands/metrics.js'],
    why: 'the command table: the daemon is the run command, imported at start; the others are separate processes of the new version',
  },
  'commands/run.ts': { specifiers: ['../sys/metrics-http.js'], why: 'imported before start-up when --metrics-listen is given, never later' },
  'control/client.ts': { specifiers: ['../sys/peercred.js'], why: 'the client side, a separate process (the daemon\'s server imports it statically)' },
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('preloadDaemonCode', () => {
  it('reaches every dynamic import a running daemon can make through a lazy loader it calls', () => {
    const preload = readFileSync('src/preload.ts', 'utf8');
    const loaders: string[] = [];
    const bare: string[] = [];
    for (const file of sources('src')) {
      const rel = relative('src', file);
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/export const (\w+) = lazy\(\(\) => import\('([^']+)'\)\);/g)) loaders.push(m[1]!);
      const plain = text.replace(/export const \w+ = lazy\(\(\) => import\('[^']+'\)\);/g, '');
      for (const m of plain.matchAll(/\bimport\(\s*(['"`])([^'"`]+)\1\s*\)/g)) {
        const spec = m[2]!;
        if (spec.startsWith('node:')) continue; // Node's built-ins are in the runtime binary, not files
        if (NOT_FOR_THE_DAEMON[rel]?.specifiers.includes(spec)) continue;
        bare.push(`${rel}: ${spec}`);
      }
    }
    expect(bare).toEqual([]);
    expect(loaders.length).toBeGreaterThanOrEqual(4); // xz-decompress, the meta writer, protobufjs, the metrics
    expect(loaders.filter((name) => !preload.includes(`${name}()`))).toEqual([]);
  });

  it('imports them, and a loaded module is never imported again', async () => {
    await expect(preloadDaemonCode()).resolves.toBeUndefined();
    let calls = 0;
    const load = lazy(async () => ++calls);
    expect(await Promise.all([load(), load()])).toEqual([1, 1]);
    expect(await load()).toBe(1);
    expect(calls).toBe(1);
  });
});
