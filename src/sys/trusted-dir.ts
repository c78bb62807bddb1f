/**
 * Which directories only root or the daemon's own user can change: the rule
 * the control socket's directory and the index cache share (sshd's
 * StrictModes, with sticky directories allowed).
 *
 * Every directory from `/` down is checked: owned by root or the daemon's
 * euid (the last one, the directory itself, by the owners the caller names),
 * and not writable by group or others unless sticky. In such a chain no one
 * else can rename, replace or add an entry that hotplugd then uses: in a
 * sticky directory others may add entries, but can neither rename nor remove
 * ours, and what they add is theirs (each caller checks the owner of the
 * entry it uses).
 *
 * The walk opens each component from its parent's descriptor with
 * O_NOFOLLOW (O_PATH|O_DIRECTORY) and checks that descriptor's fstat, so the
 * chain checked is the chain held: renaming or swapping a directory along the
 * path while the walk runs (renameat2 RENAME_EXCHANGE) cannot make it check
 * one directory and use another. The returned descriptor is the directory
 * itself; its entries are opened through `/proc/self/fd/N/NAME` (Node has no
 * openat; the kernel resolves that magic link to the very directory the
 * descriptor holds, and O_NOFOLLOW still applies to NAME). /proc is required:
 * without it nothing is trusted.
 *
 * Symlinks above the directory are followed once (realpath) to find where it
 * is; the directory found is what is walked and checked. The directory
 * itself must not be a symlink.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, realpathSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** O_PATH on Linux (x86, arm, riscv and the generic ABI; Node does not export it). */
export const O_PATH = 0o10000000;
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Who may own the directory itself: the daemon's euid only (the control socket's), or root too (the index cache). */
export type LeafOwners = 'euid' | 'euid-or-root';

/** Why a directory on the way is not trusted: the directory, whether it is above the one asked for, and what is wrong with it. */
export interface DirProblem {
  dir: string;
  ancestor: boolean;
  /** Phrased to follow "is" ("owned by uid 65534, …", "writable by its group or others and not sticky (mode 777)", "a symlink"). */
  why: string;
}

/** A directory that is not trusted (the problem), thrown by openTrustedDir; other errors are the file system's (ENOENT, EACCES). */
export class UntrustedDir extends Error {
  constructor(readonly problem: DirProblem) {
    super(`${problem.dir}: ${problem.ancestor ? 'has an ancestor ' : 'is '}${problem.why}`);
  }
}

/**
 * The rule for one directory's stat (pure): what is wrong, or null. Ancestors
 * may be owned by root or `euid`; the directory itself by `leafOwners`.
 */
export function dirStatProblem(st: { uid: number; mode: number }, euid: number, leaf: LeafOwners | undefined): string | null {
  const ownerOk = leaf === 'euid' ? st.uid === euid : st.uid === euid || st.uid === 0;
  if (!ownerOk) {
    if (leaf === 'euid') return `owned by uid ${st.uid}, not the daemon's uid ${euid}`;
    return euid === 0 ? `owned by uid ${st.uid}, not root` : `owned by uid ${st.uid}, neither root nor the daemon's uid ${euid}`;
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return `writable by its group or others and not sticky (mode ${(st.mode & 0o7777).toString(8)})`;
  return null;
}

/** The path through which an entry of directory descriptor `fd` is opened (see the file comment). */
export function entryPath(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/**
 * Open `dir` as an O_PATH descriptor after checking every directory from `/`
 * to it (see the file comment); the caller closes it. Throws UntrustedDir
 * naming the first directory that fails the rule, an errno error when a
 * directory cannot be reached (ENOENT, EACCES, …) or `dir` is a file
 * (ENOTDIR), or ENOSYS-coded when
 * /proc/self/fd is not there.
 */
export function openTrustedDir(dir: string, leaf: LeafOwners, euid = process.geteuid?.() ?? 0): number {
  const abs = resolve(dir);
  const where = abs === '/' ? '/' : realpathSync(dirname(abs));
  const names = where.split('/').filter((c) => c !== '');
  if (abs !== '/') names.push(basename(abs));
  let fd = openSync('/', DIR_FLAGS);
  let path = '/';
  try {
    try {
      lstatSync(`/proc/self/fd/${fd}`);
    } catch {
      throw Object.assign(new Error('/proc/self/fd is not available: directories cannot be checked'), { code: 'ENOSYS' });
    }
    const check = (isLeaf: boolean): void => {
      const why = dirStatProblem(fstatSync(fd), euid, isLeaf ? leaf : undefined);
      if (why !== null) throw new UntrustedDir({ dir: path, ancestor: !isLeaf, why });
    };
    check(names.length === 0);
    names.forEach((name, i) => {
      const next = path === '/' ? `/${name}` : `${path}/${name}`;
      let nfd: number;
      try {
        nfd = openSync(entryPath(fd, name), DIR_FLAGS);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOTDIR' && code !== 'ELOOP') throw e;
        let link = false;
        try {
          link = lstatSync(entryPath(fd, name)).isSymbolicLink();
        } catch {
          // gone meanwhile: named as not a directory
        }
        const ancestor = i < names.length - 1;
        // The directory asked for is a file: the caller's ENOTDIR. Anything
        // else (a symlink, or an ancestor changed since realpath) is refused.
        if (!link && !ancestor) throw e;
        throw new UntrustedDir({ dir: next, ancestor, why: link ? 'a symlink' : 'not a directory' });
      }
      closeSync(fd);
      fd = nfd;
      path = next;
      check(i === names.length - 1);
    });
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** openTrustedDir, the descriptor closed: only the verdict. */
export function checkTrustedDir(dir: string, leaf: LeafOwners, euid = process.geteuid?.() ?? 0): void {
  closeSync(openTrustedDir(dir, leaf, euid));
}
