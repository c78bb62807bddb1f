/**
 * The end-to-end initramfs: static busybox, the package's /usr/lib/hotplugd
 * (`npm run package`: the bundle, its add-ons and the Node runtime it carries,
 * with the libraries ldd names), and a kernel's full module tree: the VM runs
 * what the .deb ships. Written as an uncompressed newc cpio (the
 * kernel copies it without decompressing, which is the fast path under TCG).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface InitramfsOptions {
  root: string; // project checkout
  cache: string; // .cache/e2e
  moduleRoot: string; // ROOT with lib/modules/ABI
  abi: string;
  /** The /init script. */
  init: string;
  /** Module files (relative to lib/modules/ABI) left out on purpose. */
  remove: string[];
  /** More host files to pack, each at the same path (with the libraries ldd names for executables). */
  hostFiles?: string[];
  /** Files from elsewhere: [source, path in the initramfs]. */
  extra?: [string, string][];
  out: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', cwd, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
}

/** The tree `npm run package` builds (dist/package/root/usr/lib/hotplugd), with its runtime. */
export function packagedApp(root: string): string {
  const app = join(root, 'dist/package/root/usr/lib/hotplugd');
  if (!existsSync(join(app, 'bin/node')) || !existsSync(join(app, 'dist/src/cli.js'))) {
    throw new Error(`${app}: no packaged hotplugd with its runtime; run \`npm run package\` first (the VM boots what the .deb ships)`);
  }
  return app;
}

function copyWithParents(src: string, destRoot: string, at = src): void {
  const dest = join(destRoot, at);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest, { recursive: true, dereference: true });
}

/** An executable and the shared libraries ldd names for it. */
function copyExecutable(src: string, stage: string, at = src): void {
  copyWithParents(src, stage, at);
  let out = '';
  try {
    out = sh('ldd', [src]);
  } catch {
    return; // static
  }
  for (const line of out.split('\n')) {
    const m = /(\/\S+) \(0x/.exec(line);
    if (m) copyWithParents(m[1]!, stage);
  }
}

export function buildInitramfs(o: InitramfsOptions): void {
  const stage = join(o.cache, 'initramfs');
  rmSync(stage, { recursive: true, force: true });
  for (const d of ['bin', 'usr/bin', 'proc', 'sys', 'dev', 'run', 'tmp', 'lib/modules']) mkdirSync(join(stage, d), { recursive: true });
  // busybox (static) and the package's app, its carried node with the libraries ldd names.
  copyFileSync('/bin/busybox', join(stage, 'bin/busybox'));
  for (const f of o.hostFiles ?? []) copyExecutable(f, stage);
  const app = packagedApp(o.root);
  cpSync(app, join(stage, 'usr/lib/hotplugd'), { recursive: true });
  copyExecutable(join(app, 'bin/node'), stage, '/usr/lib/hotplugd/bin/node');
  chmodSync(join(stage, 'usr/lib/hotplugd/bin/node'), 0o755);
  symlinkSync('../lib/hotplugd/dist/src/cli.js', join(stage, 'usr/bin/hotplugd'));
  // The module tree, as depmod left it, minus the files removed on purpose.
  cpSync(join(o.moduleRoot, 'lib/modules', o.abi), join(stage, 'lib/modules', o.abi), { recursive: true, preserveTimestamps: true });
  for (const rel of o.remove) rmSync(join(stage, 'lib/modules', o.abi, rel));
  // After the module tree: an extra file there (meta.pb) is then newer than modules.dep.
  for (const [src, at] of o.extra ?? []) copyWithParents(src, stage, at);
  writeFileSync(join(stage, 'init'), o.init, { mode: 0o755 });
  copyFileSync(join(o.root, 'e2e/agent.sh'), join(stage, 'agent.sh'));
  execFileSync('sh', ['-c', `cd "${stage}" && find . | cpio -o -H newc --quiet > "${o.out}"`], { stdio: 'inherit' });
}

/** The init fragment that starts hotplugd as the only device manager (records to ttyS0). */
/** /init's lines starting hotplugd, with extra `run` flags (e.g. "--jobs 4"). */
export function hotplugdStart(flags = ''): string {
  return `echo "@@T start $(uptime_s)" > /dev/ttyS0
UV_THREADPOOL_SIZE=16 /usr/bin/hotplugd run --mode load --log-format json${flags === '' ? '' : ` ${flags}`} > /dev/ttyS0 2>&1 &`;
}
export const HOTPLUGD_START = hotplugdStart();

/** systemd-udevd with its kmod builtin, as initramfs-tools runs it. */
export const UDEVD_START = `mkdir -p /run/udev
echo "@@T start $(uptime_s)" > /dev/ttyS0
/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
echo "@@T triggered $(uptime_s)" > /dev/ttyS0
udevadm settle --timeout=600
echo "@@T settled $(uptime_s)" > /dev/ttyS0`;

/** The classic shell coldplug loop, repeated until nothing new loads. */
export const LOOP_START = `echo "@@T start $(uptime_s)" > /dev/ttyS0
prev=-1
while :; do
  find /sys -name modalias -type f -exec cat {} + 2>/dev/null | sort -u | xargs modprobe -abq 2>/dev/null
  n=$(wc -l < /proc/modules)
  [ "$n" = "$prev" ] && break
  prev=$n
done
echo "@@T settled $(uptime_s)" > /dev/ttyS0`;

export interface RootInitramfsOptions {
  moduleRoot: string; // ROOT with lib/modules/ABI
  abi: string;
  /** Modules the root file system needs, loaded with their dependencies (modprobe --show-depends order). */
  modules: string[];
  /** The virtio-blk serial of the root disk (QEMU's `serial=`). */
  rootSerial: string;
  stage: string; // scratch directory
  out: string;
}

/**
 * A minimal initramfs for a guest with its own root file system: static
 * busybox, the modules that reach the root disk (insmod, in dependency
 * order), and an /init that mounts the virtio disk whose serial is
 * `rootSerial` read-write and switch_root's to its /sbin/init. No udev, no
 * modprobe, no other driver: every other module the guest gets is loaded by
 * what runs on the root file system.
 */
export function buildRootInitramfs(o: RootInitramfsOptions): string[] {
  rmSync(o.stage, { recursive: true, force: true });
  for (const d of ['bin', 'proc', 'sys', 'dev', 'newroot', 'modules']) mkdirSync(join(o.stage, d), { recursive: true });
  copyFileSync('/bin/busybox', join(o.stage, 'bin/busybox'));
  const order: string[] = [];
  for (const m of o.modules) {
    const out = sh('modprobe', ['-d', o.moduleRoot, '-S', o.abi, '--show-depends', m]);
    for (const line of out.split('\n')) {
      const path = /^insmod (\S+)/.exec(line)?.[1];
      if (path === undefined) continue;
      const file = path.replace(/^.*\//, '');
      if (order.includes(file)) continue;
      if (!file.endsWith('.ko')) throw new Error(`${path}: a compressed module; busybox insmod in the root initramfs takes plain .ko files`);
      copyFileSync(path, join(o.stage, 'modules', file));
      order.push(file);
    }
  }
  const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "@@INITRAMFS modules $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
for m in ${order.join(' ')}; do insmod /modules/$m 2>/dev/null || echo "@@INITRAMFS insmod $m failed" > /dev/ttyS0; done
dev=
i=0
while [ -z "$dev" ] && [ $i -lt 300 ]; do
  for b in /sys/block/vd*; do [ "$(cat $b/serial 2>/dev/null)" = "${o.rootSerial}" ] && dev=/dev/\${b##*/}; done
  [ -z "$dev" ] && sleep 0.1
  i=$((i + 1))
done
[ -n "$dev" ] || { echo "@@INITRAMFS no disk with serial ${o.rootSerial}" > /dev/ttyS0; poweroff -f; }
mount -t ext4 -o rw "$dev" /newroot || { echo "@@INITRAMFS mount $dev failed" > /dev/ttyS0; poweroff -f; }
echo "@@INITRAMFS switch_root $dev $(cut -d' ' -f1 /proc/uptime)" > /dev/ttyS0
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
`;
  writeFileSync(join(o.stage, 'init'), init, { mode: 0o755 });
  execFileSync('sh', ['-c', `cd "${o.stage}" && find . | cpio -o -H newc --quiet > "${o.out}"`], { stdio: 'inherit' });
  return order.map((f) => f.replace(/\.ko$/, '').replace(/-/g, '_'));
}
