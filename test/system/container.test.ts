/**
 * No Docker engine runs here, so the image is checked step by step instead:
 * the Dockerfile pins its base by digest and copies the package tree that
 * `npm run package` builds; replayed here, that tree's /usr/bin/hotplugd (the
 * image's entrypoint) starts and answers a query.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_DIR } from '../support/helpers.js';

describe('container image, stage by stage', () => {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  const steps = dockerfile.split('\n').filter((l) => /^[A-Z]+ /.test(l));

  it('pins its base image by digest and copies only the package tree', () => {
    const from = steps.filter((l) => l.startsWith('FROM '));
    expect(from).toHaveLength(1);
    expect(from[0]).toMatch(/^FROM debian:bookworm-slim@sha256:[0-9a-f]{64}$/);
    expect(steps.filter((l) => /^(COPY|ADD) /.test(l))).toEqual(['COPY dist/package/root/usr/ /usr/']);
    // Nothing is installed or compiled in the image: what runs is what the .deb ships.
    expect(steps.filter((l) => l.startsWith('RUN '))).toEqual([]);
    expect(steps).toContain('ENTRYPOINT ["/usr/bin/hotplugd"]');
  });

  it('keeps the docker run line the README shows', () => {
    const readme = readFileSync('README.md', 'utf8');
    const run = /docker run -d --name hotplugd(?:[^\n\\]|\\\n)*/.exec(readme)?.[0];
    expect(run).toBeDefined();
    for (const flag of ['--network host', '--cap-add SYS_MODULE', '--cap-add NET_ADMIN', '/lib/modules:/lib/modules:ro', '/sys:/sys:ro']) {
      expect(run).toContain(flag);
      expect(dockerfile).toContain(flag);
    }
  });

  it('runs the entrypoint from the package tree the image copies', () => {
    const out = mkdtempSync(join(tmpdir(), 'hotplugd-image-'));
    execFileSync(process.execPath, ['scripts/package.mjs', '--runtime', 'system', '--out', out], { stdio: 'pipe' });
    const entry = join(out, 'root/usr/bin/hotplugd');
    expect(existsSync(entry)).toBe(true);
    // The image's /usr/bin/hotplugd is a link into /usr/lib/hotplugd, which the COPY carries too.
    const cli = realpathSync(entry);
    expect(cli.startsWith(join(out, 'root/usr/lib/hotplugd/'))).toBe(true);
    const match = execFileSync(
      process.execPath,
      [cli, 'match', '--modules-dir', FIXTURE_DIR, '--cmdline', '', '--config-dir', '', 'virtio:d00000001v00001AF4'],
      { encoding: 'utf8' },
    );
    expect(match).toBe('virtio_net\n');
    expect(execFileSync(process.execPath, [cli, 'run', '--help'], { encoding: 'utf8' })).toMatch(/^Usage: hotplugd run/);
  }, 180000);
});
