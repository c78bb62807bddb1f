/**
 * Where `run` listens: `--control PATH` (must bind, or start-up fails),
 * `--control ''` (no socket), or by default /run/hotplugd/control, and for a
 * non-root daemon that cannot use it, $XDG_RUNTIME_DIR/hotplugd/control;
 * when no default path can be bound, the daemon runs without a control
 * socket after one warning (loading devices matters more than the socket).
 * A path a live daemon holds is always a start-up failure.
 */
import { type Socket } from 'node:net';
import { join } from 'node:path';
import { type Log } from '../core/queue.js';
import { isHotplugError } from '../errors.js';
import { ALREADY_LISTENS, bindControlSocket, type BoundSocket } from '../sys/control-socket.js';
import { DEFAULT_CONTROL } from './client.js';

export async function listenControl(
  flag: string | undefined,
  onConnection: (s: Socket) => void,
  log: Log,
  group: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
  uid = process.getuid?.() ?? 0,
): Promise<BoundSocket | undefined> {
  if (flag === '') return undefined;
  if (flag !== undefined) return bindControlSocket(flag, onConnection, group);
  const candidates = [DEFAULT_CONTROL];
  if (uid !== 0 && env.XDG_RUNTIME_DIR) candidates.push(join(env.XDG_RUNTIME_DIR, 'hotplugd/control'));
  const problems: string[] = [];
  for (const path of candidates) {
    try {
      return await bindControlSocket(path, onConnection, group);
    } catch (e) {
      if (isHotplugError(e) && e.message.includes(ALREADY_LISTENS)) throw e;
      problems.push(isHotplugError(e) ? e.message : String(e));
    }
  }
  log.warn({ problems, tried: candidates }, 'no control socket: status, settle, monitor, why and reload are unavailable (use --control PATH)');
  return undefined;
}
