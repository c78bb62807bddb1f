/**
 * The client side of the control socket (the status, settle, monitor, why
 * and reload commands): which path to use, connecting, one request and its
 * reply, or a stream of lines. Exit codes: 0 ok, 1 the daemon answered with
 * an error (settle timed out, permission denied, reload failed), 100 usage,
 * 111 no daemon to talk to.
 */
import { lstatSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { HotplugError } from '../errors.js';
import { printable } from '../printable.js';
import { LineSplitter, SETTLE_DEFAULT_S, SETTLE_MAX_S } from './protocol.js';

export const DEFAULT_CONTROL = '/run/hotplugd/control';
/** Replies are a few KiB (why lists at most 20 + 20 entries); a line over 16 MiB is not ours. */
const MAX_REPLY_LINE = 16 * 1024 * 1024;

export const CONTROL_FLAGS = { control: { type: 'string' } } as const;

export const CONTROL_HELP = `  --control PATH  the daemon's control socket (default ${DEFAULT_CONTROL};
                  when that cannot be connected to and not root:
                  $XDG_RUNTIME_DIR/hotplugd/control)`;

export const CLIENT_EXIT_HELP = `Exit codes: 0 ok, 1 the daemon refused or answered with an error, 100 usage
error, 111 cannot connect (no daemon listens on the path tried), or, as root,
a daemon that does not run as root.`;

/** The socket paths to try, in order: --control, else the default then (non-root) the per-user one. */
export function controlPaths(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): string[] {
  if (flag !== undefined) {
    if (flag === '') throw new HotplugError('E_USAGE', '--control: an empty path disables the socket in "run"; a client needs one');
    return [flag];
  }
  const xdg = env.XDG_RUNTIME_DIR;
  return uid !== 0 && xdg !== undefined && xdg !== '' ? [DEFAULT_CONTROL, join(xdg, 'hotplugd/control')] : [DEFAULT_CONTROL];
}

function connectOne(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Who listens on a connected socket: its uid (SO_PEERCRED), undefined when unreadable. */
export type ServerUid = (s: Socket) => Promise<number | undefined>;

async function serverUidOf(s: Socket): Promise<number | undefined> {
  const { peerCredentials } = await import('../sys/peercred.js'); // koffi: loaded only by a root client
  return peerCredentials(s)?.uid;
}

/**
 * A root client trusts only a daemon that runs as root: the server's
 * SO_PEERCRED uid must be 0 (when unreadable, the socket file must be
 * root's). Otherwise a user who could bind the path (a --control in a
 * directory they write) would answer root's `settle` or `reload`.
 */
async function checkServer(s: Socket, path: string, serverUid: ServerUid): Promise<void> {
  let uid = await serverUid(s);
  if (uid === undefined) {
    try {
      uid = lstatSync(path).uid;
    } catch {
      uid = undefined;
    }
  }
  if (uid !== 0) {
    s.destroy();
    throw new HotplugError('E_SYSTEM', `${path}: the control socket is served by ${uid === undefined ? 'an unknown user' : `uid ${uid}`}, not root; not trusted by a root client`);
  }
}

/** Connect to the first path that answers; E_SYSTEM (exit 111) naming every path tried otherwise. */
export async function connectControl(paths: string[], euid = process.geteuid?.() ?? 0, serverUid: ServerUid = serverUidOf): Promise<Socket> {
  const problems: string[] = [];
  let absent = false;
  for (const p of paths) {
    let s: Socket;
    try {
      s = await connectOne(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      absent ||= code === 'ENOENT' || code === 'ECONNREFUSED';
      const why =
        code === 'ENOENT'
          ? 'no such socket'
          : code === 'ECONNREFUSED'
            ? 'nobody listens (stale socket)'
            : code === 'EACCES'
              ? "permission denied (root only, or members of the daemon's --control-group)"
              : (e as Error).message;
      problems.push(`${p}: ${why}`);
      continue;
    }
    if (euid === 0) await checkServer(s, p, serverUid);
    return s;
  }
  // "Is the daemon running?" only where no daemon was found: a user who was denied is told so, not asked.
  throw new HotplugError('E_SYSTEM', `cannot connect to the hotplugd control socket${absent ? ' (is the daemon running?)' : ''}: ${problems.join('; ')}`);
}

/** Lines from the daemon, one callback each; resolves when the connection ends. */
export function readLines(s: Socket, onLine: (obj: Record<string, unknown>) => boolean | void): Promise<void> {
  const splitter = new LineSplitter(MAX_REPLY_LINE);
  return new Promise((resolve, reject) => {
    s.on('data', (chunk: Buffer) => {
      for (const l of splitter.push(chunk)) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(l) as Record<string, unknown>;
        } catch {
          s.destroy();
          return reject(new HotplugError('E_SYSTEM', 'the control socket sent a line that is not JSON'));
        }
        if (onLine(obj) === false) {
          s.destroy();
          return resolve();
        }
      }
      if (splitter.overflow) {
        s.destroy();
        reject(new HotplugError('E_SYSTEM', 'the control socket sent an oversized line'));
      }
    });
    s.on('error', (e) => reject(new HotplugError('E_SYSTEM', `control socket: ${e.message}`)));
    s.on('close', () => resolve());
  });
}

/** One request, its one reply. */
export async function request(paths: string[], req: Record<string, unknown>): Promise<Record<string, unknown>> {
  const s = await connectControl(paths);
  let reply: Record<string, unknown> | undefined;
  const done = readLines(s, (obj) => {
    reply = obj;
    return false;
  });
  s.write(`${JSON.stringify(req)}\n`);
  await done;
  if (reply === undefined) throw new HotplugError('E_SYSTEM', 'the daemon closed the control connection without an answer');
  return reply;
}

/** --timeout for settle: seconds from 0 to a day (default 120, as udevadm settle). */
export function settleTimeout(raw: string | undefined): number {
  const text = raw ?? String(SETTLE_DEFAULT_S);
  const timeout = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(timeout >= 0 && timeout <= SETTLE_MAX_S)) throw new HotplugError('E_USAGE', `--timeout takes seconds from 0 to ${SETTLE_MAX_S} (got "${text}")`);
  return timeout;
}

/** The line a client command prints for a refusal or error answer: `hotplugd: ERROR [CODE]` and `extra`, every part escaped (printable()). */
export function errorLine(reply: Record<string, unknown>, extra = ''): string {
  return `${printable(`hotplugd: ${String(reply.error)} [${String(reply.code)}]${extra}`)}\n`;
}

/** Ask the daemon to settle (`hotplugd settle`, `trigger --settle`): true when settled; otherwise one line on `err` with what is pending. */
export async function settle(paths: string[], timeout: number, err: NodeJS.WritableStream): Promise<boolean> {
  const reply = await request(paths, { cmd: 'settle', timeout });
  if (reply.ok === true) {
    // Settled, but loads the load timeout gave up on are still inside the kernel: said, not waited for.
    const stuck = reply.stuck;
    if (Array.isArray(stuck) && stuck.length > 0) err.write(`hotplugd: settled; left behind by the load or install timeout, still running: ${printable(stuck.map(String).join(' '))}\n`);
    return true;
  }
  const pending = reply.pending !== undefined ? ` pending: ${JSON.stringify(reply.pending)}` : '';
  err.write(errorLine(reply, pending));
  return false;
}
