/**
 * The end-to-end initramfs: static busybox, the host's node with the
 * libraries ldd names, this project built with production dependencies only,
 * and a kernel's full module tree. Written as an uncompressed newc cpio (the
 * kernel copies it without decompressing, which is the fast path under TCG).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';

export interface InitramfsOptions {
  root: string; // project checkout
  cache: string; // .cache/e2e
  moduleRoot: string; // ROOT with lib/modules/ABI
  abi: string;
  hotplugdArgs: string;
  /** Module files (relative to lib/modules/ABI) left out on purpose. */
  remove: string[];
  out: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

/** Production node_modules, cached by lockfile hash. */
function productionApp(root: string, cache: string): string {
  const lock = readFileSync(join(root, 'package-lock.json'));
  const key = createHash('sha256').update(lock).update(readFileSync(join(root, 'package.json'))).digest('hex').slice(0, 16);
  const dir = join(cache, `app-deps-${key}`);
  if (!existsSync(join(dir, '.done'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
    copyFileSync(join(root, 'package-lock.json'), join(dir, 'package-lock.json'));
    sh('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
    writeFileSync(join(dir, '.done'), '');
  }
  return dir;
}

function copyWithParents(src: string, destRoot: string): void {
  const dest = join(destRoot, src);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(src, dest);
}

export function buildInitramfs(o: InitramfsOptions): void {
  const stage = join(o.cache, 'initramfs');
  rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'usr/bin', 'proc', 'sys', 'dev', 'run', 'tmp', 'lib/modules', 'app']) mkdirSync(join(stage, d), { recursive: true });
  // busybox (static) and node with its libraries.
  copyFileSync('/bin/busybox', join(stage, 'bin/busybox'));
  const node = process.execPath;
  copyFileSync(node, join(stage, 'usr/bin/node'));
  chmodSync(join(stage, 'usr/bin/node'), 0o755);
  for (const line of sh('ldd', [node]).split('\n')) {
    const m = /(\/\S+) \(0x/.exec(line);
    if (m) copyWithParents(m[1]!, stage);
  }
  // The project: built output, schema, production dependencies.
  const app = join(stage, 'app');
  cpSync(join(o.root, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(o.root, 'proto'), join(app, 'proto'), { recursive: true });
  copyFileSync(join(o.root, 'package.json'), join(app, 'package.json'));
  cpSync(join(productionApp(o.root, o.cache), 'node_modules'), join(app, 'node_modules'), { recursive: true });
  // The module tree, as depmod left it, minus the files removed on purpose.
  cpSync(join(o.moduleRoot, 'lib/modules', o.abi), join(stage, 'lib/modules', o.abi), { recursive: true });
  for (const rel of o.remove) rmSync(join(stage, 'lib/modules', o.abi, rel));
  const init = readFileSync(join(o.root, 'e2e/init.sh'), 'utf8').replace('__HOTPLUGD_ARGS__', o.hotplugdArgs);
  writeFileSync(join(stage, 'init'), init, { mode: 0o755 });
  execFileSync('sh', ['-c', `cd "${stage}" && find . | cpio -o -H newc --quiet > "${o.out}"`], { stdio: 'inherit' });
}
