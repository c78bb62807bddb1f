/**
 * npm run package (scripts/package.mjs), built twice from this commit with the
 * system runtime (the carried Node binary only adds one copied file): the
 * .deb and the tarball are byte-identical, hold the tree the README lists,
 * owned by root, and the bundled daemon answers `match` from the shipped index.
 * The tarball unpacks into a merged-/usr root without replacing its links;
 * the .deb ships nothing in /etc and has debhelper's maintainer scripts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
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
      './usr/lib/hotplugd/udev-rule',
      './usr/lib/hotplugd/udev-mask.rules',
      './usr/share/man/man8/hotplugd.8.gz',
      './usr/share/bash-completion/completions/hotplugd',
      './usr/share/doc/hotplugd/README.md',
      './usr/share/doc/hotplugd/examples/install-commands.conf',
      './usr/share/doc/hotplugd/copyright',
      './usr/share/doc/hotplugd/changelog.gz',
      './usr/share/lintian/overrides/hotplugd',
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
    // Nothing an admin owns: no file in /etc (udev's rule is masked in /run by the unit).
    expect(paths.filter((p) => p.startsWith('./etc/'))).toEqual([]);
    // No sources of the native add-ons, no licence files beside the code (they are in copyright).
    expect(paths.filter((p) => /\.(S|asm|inc|cc|h)$|trampolines|\/LICEN[CS]E/i.test(p) && p.includes('node_modules'))).toEqual([]);
    // The tarball: the same tree, but its units in usr/lib/systemd/system and nothing in lib/.
    const tar = execFileSync('tar', ['-tzf', join(first, TARBALL)], { encoding: 'utf8' }).trim().split('\n');
    const merged = (p: string): string => p.replace(/^\.\/lib\/systemd\//, './usr/lib/systemd/');
    const debTree = paths.filter((p) => p !== './' && !/^\.\/lib\/$/.test(p) && !p.startsWith('./usr/share/lintian')).map(merged);
    expect(tar.filter((p) => p !== './').sort()).toEqual([...new Set(debTree)].sort());
    expect(tar.filter((p) => /^\.\/(lib|lib64|bin|sbin)(\/|$)/.test(p))).toEqual([]);
  });

  it('unpacks the tarball into a merged-/usr root without replacing its lib, bin and sbin links', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-merged-'));
    for (const d of ['lib', 'bin', 'sbin']) {
      mkdirSync(join(root, 'usr', d), { recursive: true });
      symlinkSync(`usr/${d}`, join(root, d));
    }
    execFileSync('tar', ['-xzf', join(first, TARBALL), '-C', root]);
    for (const d of ['lib', 'bin', 'sbin']) {
      expect(lstatSync(join(root, d)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(root, d))).toBe(`usr/${d}`);
    }
    expect(lstatSync(join(root, 'lib/systemd/system/hotplugd.service')).isFile()).toBe(true);
  });

  it('has debhelper\'s maintainer scripts: enable on first install, restart on upgrade through deb-systemd-invoke', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-control-'));
    execFileSync('dpkg-deb', ['-e', join(first, DEB), dir]);
    const postinst = readFileSync(join(dir, 'postinst'), 'utf8');
    expect(postinst).toContain("deb-systemd-helper --quiet was-enabled 'hotplugd.service'");
    expect(postinst).toMatch(/_dh_action=restart[\s\S]*deb-systemd-invoke \$_dh_action 'hotplugd.service'/);
    expect(postinst).not.toMatch(/^\s*systemctl (enable|start)/m);
    expect(readFileSync(join(dir, 'prerm'), 'utf8')).toContain("deb-systemd-invoke stop 'hotplugd.service'");
    const postrm = readFileSync(join(dir, 'postrm'), 'utf8');
    expect(postrm).toContain("deb-systemd-helper purge 'hotplugd.service'");
    expect(postrm).toContain('rm -f /var/cache/hotplugd/*.idx');
    expect(postrm).not.toContain('rm -rf');
    const copyright = readFileSync(join(first, 'root/usr/share/doc/hotplugd/copyright'), 'utf8');
    expect(copyright).toMatch(/^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/$/m);
    expect(copyright).toMatch(/^Files: usr\/lib\/hotplugd\/node_modules\/koffi\/\*$/m);
    expect(copyright).toMatch(/pino \d/);
  });

  it('declares the runtime it needs', () => {
    const control = execFileSync('dpkg-deb', ['-f', join(first, DEB)], { encoding: 'utf8' });
    expect(control).toMatch(/^Depends: .*\bnodejs \(>= 22\)/m);
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
