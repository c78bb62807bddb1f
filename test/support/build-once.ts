/**
 * vitest globalSetup of the system project: the system tests run the built
 * CLI (dist/src/cli.js), so build it first when any file under src/ is newer
 * than the build — `npx vitest` after an edit never tests stale code.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  let built = 0;
  try {
    built = newest('dist/src');
  } catch {
    // no build yet
  }
  if (newest('src') > built) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
