/**
 * No Docker engine runs here, so the image is checked step by step instead:
 * the Dockerfile's build stage compiles with tsconfig.build.json alone, and
 * its runtime stage (production dependencies only, no install scripts) can
 * start the CLI and answer a query.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

describe('container image, stage by stage', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');

  it('uses a multi-stage build and installs production dependencies only in the image', () => {
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev --ignore-scripts/m);
    expect(dockerfile).toMatch(/^RUN npx tsc -p tsconfig.build.json$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "\/app\/dist\/src\/cli.js"\]$/m);
  });

  it('runs the CLI from a production-only install, as the runtime stage lays it out', () => {
    const app = mkdtempSync(join(tmpdir(), 'hotplugd-image-'));
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) cpSync(f, join(app, f));
    cpSync('src', join(app, 'src'), { recursive: true });
    cpSync('proto', join(app, 'proto'), { recursive: true });
    // build stage: all dependencies (this checkout's, linked in), compile src only
    symlinkSync(join(process.cwd(), 'node_modules'), join(app, 'node_modules'));
    execFileSync(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: app, stdio: 'pipe' });
    unlinkSync(join(app, 'node_modules'));
    // runtime stage
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, stdio: 'pipe' });
    expect(() => readFileSync(join(app, 'node_modules/typescript/package.json'))).toThrow();
    const out = execFileSync(
      process.execPath,
      [join(app, 'dist/src/cli.js'), 'match', '--modules-dir', FIXTURE_DIR, '--cmdline', '', '--config-dir', '', 'virtio:d00000001v00001AF4'],
      { encoding: 'utf8' },
    );
    expect(out).toBe('virtio_net\n');
    const help = execFileSync(process.execPath, [join(app, 'dist/src/cli.js'), 'run', '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/^Usage: hotplugd run/);
  }, 180000);
});
