/**
 * Binding the control socket's path safely:
 * - the parent directory is created when missing, and each directory created
 *   is given 0755 whatever the umask (the unit's UMask=0077 would make it
 *   0700, and --control-group members could not reach the socket);
 * - the parent must be a real directory (not a symlink), owned by the
 *   daemon's euid and not group/other-writable unless sticky, and each
 *   directory above it owned by root or that euid and likewise (sshd's
 *   StrictModes, with sticky directories allowed; trusted-dir.ts, the rule
 *   and the code the index cache uses too): no one else can swap a name
 *   under us. A sticky parent is allowed because Kubernetes' emptyDir
 *   (medium: Memory, the daemonset's /run/hotplugd) is a tmpfs of mode
 *   1777; there no one else can rename or remove our private directory or
 *   socket, or an entry we would replace, so the worst another user can do
 *   is take the name first (start-up then fails, naming it);
 * - a path taken by a live daemon (a connect succeeds) is an error naming it;
 *   anything that is not a socket is refused and never removed;
 * - the socket is bound inside a fresh private 0700 directory made under the
 *   parent (mkdtemp), with its final mode from the umask around the bind
 *   (0600, or 0660 with a group), given its group there with lchown (never
 *   following a symlink), and then renamed into place: one atomic step that
 *   also replaces a stale socket. No one can reach the socket, or put a
 *   symlink where it is chown'd, before it is complete.
 * Closing unlinks the path only while it is still the socket we bound.
 */
import { chmodSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { HotplugError } from '../errors.js';
import { checkTrustedDir, UntrustedDir } from './trusted-dir.js';

/** The message of the error for a path a live daemon holds (never worked around by a fallback path). */
export const ALREADY_LISTENS = 'a running daemon already listens on this control socket';

export interface BoundSocket {
  server: Server;
  path: string;
  /** Stop listening, unlink the path if it is still ours. */
  close(): void;
}

/** Whether something accepts connections on `path` (true), refuses them (false: stale), or errs. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.destroy();
      if (e.code === 'ECONNREFUSED') resolve(false);
      else reject(new HotplugError('E_SYSTEM', `cannot check the existing socket: ${e.message}`, { file: path }));
    });
  });
}

async function clearPath(path: string): Promise<void> {
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new HotplugError('E_SYSTEM', `control socket: ${(e as Error).message}`, { file: path });
  }
  if (!st.isSocket()) throw new HotplugError('E_INPUT', 'control socket path exists and is not a socket; not removed', { file: path });
  if (await probe(path)) throw new HotplugError('E_SYSTEM', ALREADY_LISTENS, { file: path });
  unlinkSync(path); // stale: nobody listens
}

/** Create `dir` (and missing parents), each directory created 0755 whatever the umask. */
function makeDirs(dir: string): void {
  let first: string | undefined;
  try {
    first = mkdirSync(dir, { recursive: true, mode: 0o755 });
    if (first === undefined) return;
    for (let d = dir; ; d = dirname(d)) {
      chmodSync(d, 0o755);
      if (d === first || d === dirname(d)) break;
    }
  } catch (e) {
    throw new HotplugError('E_SYSTEM', `cannot create the control socket's directory (0755): ${(e as Error).message}`, { file: first ?? dir });
  }
}

/**
 * Refuse a parent directory anyone but us could change (the problem named):
 * trusted-dir.ts's rule, shared with the index cache, the directory itself
 * owned by the daemon's euid.
 */
export function checkParent(dir: string, euid = process.geteuid?.() ?? 0): void {
  try {
    checkTrustedDir(dir, 'euid', euid);
  } catch (e) {
    if (e instanceof UntrustedDir) {
      const p = e.problem;
      throw new HotplugError('E_INPUT', `control socket directory ${p.ancestor ? 'has an ancestor' : 'is'} ${p.why}; refused (choose a directory only the daemon's user can write)`, { file: p.dir });
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') throw new HotplugError('E_INPUT', "control socket directory is not a directory; refused (choose a directory only the daemon's user can write)", { file: dir });
    throw new HotplugError('E_SYSTEM', `control socket directory: ${(e as Error).message}`, { file: dir });
  }
}

export async function bindControlSocket(path: string, onConnection: (s: Socket) => void, group?: number): Promise<BoundSocket> {
  const dir = dirname(path);
  makeDirs(dir);
  checkParent(dir);
  await clearPath(path);
  let priv: string;
  try {
    priv = mkdtempSync(join(dir, '.hp'));
  } catch (e) {
    throw new HotplugError('E_SYSTEM', `cannot create a private directory to bind the control socket in: ${(e as Error).message}`, { file: dir });
  }
  const tmp = join(priv, basename(path));
  // Half-open: a client may send its request and shut down its side
  // (`socat - UNIX-CONNECT:...`); the answer still goes out, then we end.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection);
  const cleanup = (): void => {
    server.close();
    try {
      unlinkSync(tmp);
    } catch {
      // not bound
    }
    try {
      rmdirSync(priv);
    } catch {
      // gone
    }
  };
  try {
    await new Promise<void>((resolveBound, reject) => {
      server.once('error', (e) => reject(new HotplugError('E_SYSTEM', `cannot bind the control socket: ${e.message}`, { file: path, cause: e })));
      // The bind happens inside listen(), synchronously: the umask covers it
      // and nothing else (no other file is created in between).
      const old = process.umask(group !== undefined ? 0o117 : 0o177);
      try {
        server.listen(tmp, () => resolveBound());
      } finally {
        process.umask(old);
      }
    });
    if (group !== undefined) {
      try {
        lchownSync(tmp, -1, group);
      } catch (e) {
        throw new HotplugError('E_SYSTEM', `cannot give the control socket group ${group}: ${(e as Error).message}`, { file: path });
      }
    }
    try {
      renameSync(tmp, path);
    } catch (e) {
      throw new HotplugError('E_SYSTEM', `cannot move the control socket into place: ${(e as Error).message}`, { file: path });
    }
  } catch (e) {
    cleanup();
    throw e;
  }
  try {
    rmdirSync(priv);
  } catch {
    // left empty: harmless
  }
  const ino = lstatSync(path).ino;
  return {
    server,
    path,
    close(): void {
      server.close();
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // gone already
      }
    },
  };
}
