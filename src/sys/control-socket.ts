/**
 * Binding the control socket's path safely:
 * - the parent directory is created (0755) when missing;
 * - a path taken by a live daemon (a connect succeeds) is an error naming it;
 *   a stale socket (connect refused) is replaced; anything that is not a
 *   socket is refused and never unlinked;
 * - the socket is created 0600 (umask around the bind: no window in which it
 *   is wider), then, with a group, given that group and 0660.
 * Closing unlinks the path only while it is still the socket we bound.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { HotplugError } from '../errors.js';

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

export async function bindControlSocket(path: string, onConnection: (s: Socket) => void, group?: number): Promise<BoundSocket> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new HotplugError('E_SYSTEM', `cannot create the control socket's directory: ${(e as Error).message}`, { file: dirname(path) });
  }
  await clearPath(path);
  // Half-open: a client may send its request and shut down its side
  // (`socat - UNIX-CONNECT:...`); the answer still goes out, then we end.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new HotplugError('E_SYSTEM', `cannot bind the control socket: ${e.message}`, { file: path, cause: e })));
    // The bind happens inside listen(), synchronously: the umask covers it
    // and nothing else (no other file is created in between).
    const old = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(old);
    }
  });
  const ino = lstatSync(path).ino;
  try {
    if (group !== undefined) {
      chownSync(path, -1, group);
      chmodSync(path, 0o660);
    }
  } catch (e) {
    server.close();
    throw new HotplugError('E_SYSTEM', `cannot give the control socket group ${group}: ${(e as Error).message}`, { file: path });
  }
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
