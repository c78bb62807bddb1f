/**
 * npm run package (scripts/package.mjs), built twice from this commit with the
 * system runtime (the carried Node binary only adds one copied file): the
 * .deb and the tarball are byte-identical, hold the tree the README lists,
 * owned by root, and the bundled daemon answers `match` from the shipped index.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const VERSION = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;
const DEB = `hotplugd_${VERSION}_${ARCH}.deb`;
const TARBALL = `hotplugd-${VERSION}-linux-${process.arch}.tar.gz`;

function build(): string {
  const out = mkdtempSync(join(tmpdir(), 'hotplugd-package-'));
  execFileSync(process.execPath, ['scripts/package.mjs', '--runtime', 'system', '--out', out], { stdio: 'pipe' });
  return out;
}
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('npm run package', () => {
  let first: string;
  let second: string;
  beforeAll(() => {
    first = build();
    second = build();
  }, 240000);

  it('gives the same bytes when built twice from the same commit', () => {
    expect(sha256(join(second, DEB))).toBe(sha256(join(first, DEB)));
    expect(sha256(join(second, TARBALL))).toBe(sha256(join(first, TARBALL)));
  });

  it('ships the app, the command, the unit, the man page, the completion and the licence, all owned by root', () => {
    const listing = execFileSync('dpkg-deb', ['-c', join(first, DEB)], { encoding: 'utf8' }).trim().split('\n');
    const paths = listing.map((l) => l.split(/\s+/)[5] ?? '');
    for (const path of [
      './usr/lib/hotplugd/dist/src/cli.js',
      './usr/lib/hotplugd/node_modules/koffi/package.json',
      './usr/lib/hotplugd/node_modules/netlink/package.json',
      './usr/bin/hotplugd',
      './lib/systemd/system/hotplugd.service',
      './lib/systemd/system/hotplugd-settle.service',
      './usr/share/man/man8/hotplugd.8.gz',
      './usr/share/bash-completion/completions/hotplugd',
      './usr/share/doc/hotplugd/README.md',
      './usr/share/doc/hotplugd/copyright',
      './etc/udev/rules.d/80-drivers.rules',
      './usr/share/hotplugd/example/debian-6.1.0-56-amd64/modules.alias',
      './var/cache/hotplugd/',
    ]) {
      expect(paths).toContain(path);
    }
    expect(listing.every((l) => l.split(/\s+/)[1] === 'root/root')).toBe(true);
    // Bundled: no dev dependency, no other architecture's add-on, no test corpus.
    expect(paths.filter((p) => /node_modules\/(typescript|vitest|esbuild|pino|protobufjs|prom-client)\//.test(p))).toEqual([]);
    // Split at the dynamic imports: what a command does not use is not read.
    expect(paths.filter((p) => /^\.\/usr\/lib\/hotplugd\/dist\/src\/chunks\/[\w-]+\.js$/.test(p)).length).toBeGreaterThan(1);
    expect(paths.filter((p) => /prebuilds\/(?!linux-x64)/.test(p) && p.endsWith('.node'))).toEqual([]);
    expect(paths.filter((p) => /corpus|golden/.test(p))).toEqual([]);
    const tar = execFileSync('tar', ['-tzf', join(first, TARBALL)], { encoding: 'utf8' }).trim().split('\n');
    expect(tar.filter((p) => p !== './').sort()).toEqual(paths.filter((p) => p !== './').sort());
  });

  it('declares the runtime it needs', () => {
    const control = execFileSync('dpkg-deb', ['-f', join(first, DEB)], { encoding: 'utf8' });
    expect(control).toMatch(/^Depends: nodejs \(>= 22\)$/m);
    expect(control).toMatch(/^Package: hotplugd$/m);
  });

  it('runs the bundled daemon: --version, run --help and match against the shipped index', () => {
    const root = join(first, 'root');
    const cli = join(root, 'usr/lib/hotplugd/dist/src/cli.js');
    expect(execFileSync(process.execPath, [cli, '--version'], { encoding: 'utf8' })).toContain(`hotplugd ${VERSION}`);
    expect(execFileSync(process.execPath, [cli, 'run', '--help'], { encoding: 'utf8' })).toMatch(/^Usage: hotplugd run/);
    const index = join(root, 'usr/share/hotplugd/example/debian-6.1.0-56-amd64');
    const out = execFileSync(
      process.execPath,
      [cli, 'match', '--modules-dir', index, '--cmdline', '', '--config-dir', '', 'virtio:d00000001v00001AF4'],
      { encoding: 'utf8' },
    );
    expect(out).toBe('virtio_net\n');
  });

  it('refuses to empty an output directory it did not make', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-notmine-'));
    execFileSync('touch', [join(dir, 'keep')]);
    expect(() => execFileSync(process.execPath, ['scripts/package.mjs', '--out', dir], { stdio: 'pipe' })).toThrow(/refusing to empty/);
    expect(readFileSync(join(dir, 'keep'), 'utf8')).toBe('');
  });
});
