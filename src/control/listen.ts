/**
 * Where `run` listens: `--control PATH` (must bind, or start-up fails),
 * `--control ''` (no socket), or by default /run/hotplugd/control, and for a
 * non-root daemon that cannot use it, $XDG_RUNTIME_DIR/hotplugd/control;
 * when no default path can be bound, the daemon runs without a control
 * socket after one warning (loading devices matters more than the socket).
 * A path a live daemon holds is a start-up failure, except a default path
 * with `yieldToLive` (run --demo beside the machine's own daemon: the demo
 * goes without a socket, after the same warning).
 */
import { type Socket } from 'node:net';
import { join } from 'node:path';
import { type Log } from '../core/queue.js';
import { isHotplugError } from '../errors.js';
import { ALREADY_LISTENS, bindControlSocket, type BoundSocket } from '../sys/control-socket.js';
import { DEFAULT_CONTROL } from './client.js';

export interface ListenOptions {
  env?: NodeJS.ProcessEnv;
  uid?: number;
  /** A default path a live daemon holds: leave it to that daemon and go without a socket (run --demo). */
  yieldToLive?: boolean;
  /** The default path (tests). */
  defaultPath?: string;
}

export async function listenControl(
  flag: string | undefined,
  onConnection: (s: Socket) => void,
  log: Log,
  group: number | undefined,
  opts: ListenOptions = {},
): Promise<BoundSocket | undefined> {
  const env = opts.env ?? process.env;
  const uid = opts.uid ?? process.getuid?.() ?? 0;
  const yieldToLive = opts.yieldToLive === true;
  if (flag === '') return undefined;
  if (flag !== undefined) return bindControlSocket(flag, onConnection, group);
  const candidates = [opts.defaultPath ?? DEFAULT_CONTROL];
  if (uid !== 0 && env.XDG_RUNTIME_DIR) candidates.push(join(env.XDG_RUNTIME_DIR, 'hotplugd/control'));
  const problems: string[] = [];
  for (const path of candidates) {
    try {
      return await bindControlSocket(path, onConnection, group);
    } catch (e) {
      if (isHotplugError(e) && e.message.includes(ALREADY_LISTENS) && !yieldToLive) throw e;
      problems.push(isHotplugError(e) ? e.message : String(e));
    }
  }
  log.warn({ problems, tried: candidates }, 'no control socket: status, settle, monitor, why, reload and metrics are unavailable (use --control PATH)');
  return undefined;
}
