/**
 * The control socket of a running daemon, assembled: the history fed by the
 * daemon's requests and the log's records, the handler table, the server
 * with its access rule, bound where listen.ts decides.
 */
import { type Daemon } from '../daemon.js';
import { type RecordTap } from '../log.js';
import { type Log } from '../core/queue.js';
import { deviceModalias, devpathOfSysfsPath } from '../sys/coldplug.js';
import { peerCredentials, processGroups } from '../sys/peercred.js';
import { controlHandlers, type ControlContext } from './handlers.js';
import { History } from './history.js';
import { listenControl } from './listen.js';
import { ControlServer, type Handler } from './server.js';

export interface ControlOptions {
  daemon: Daemon;
  tap: RecordTap;
  log: Log;
  /** --control: undefined for the default, '' for none. */
  path: string | undefined;
  /** --control-group, resolved to a gid. */
  group: number | undefined;
  procfs: string;
  info: ControlContext['info'];
  /** sysfs root: why DEVPATH reads the device's modalias file there. */
  sysfs: string;
  /**
   * More commands, by name (merged over the built-in table; see handlers.ts):
   * e.g. `{ metrics: { access: 'read', run: () => ({ ok: true, text }) } }`.
   */
  handlers?: Readonly<Record<string, Handler>>;
  /** A default path a live daemon holds is left to it (run --demo beside the real daemon) instead of failing start-up. */
  yieldToLive?: boolean;
}

export interface Control {
  path: string | undefined;
  server: ControlServer | undefined;
  close(): void;
}

export async function startControl(o: ControlOptions): Promise<Control> {
  if (o.path === '') return { path: undefined, server: undefined, close: () => undefined };
  const history = new History();
  const unsubscribe = o.tap.subscribe((l, rec) => history.record(l, rec));
  o.daemon.onRequest = (r) => history.request(r);
  const ctx: ControlContext = { daemon: o.daemon, tap: o.tap, history, info: o.info, startedAt: new Date(), readModalias: (devpath) => deviceModalias(o.sysfs, devpath), devpathOf: (path) => devpathOfSysfsPath(o.sysfs, path) };
  const group = o.group;
  const server = new ControlServer({
    handlers: { ...controlHandlers(ctx), ...o.handlers },
    log: o.log,
    credentials: peerCredentials,
    // The socket file (root:GROUP 0660) lets only root and members connect:
    // the kernel checks the connecting process's groups there. Here, the
    // peer's primary gid (SO_PEERCRED), else its supplementary groups as the
    // kernel recorded them at connect() (SO_PEERGROUPS), else as
    // /proc/PID/status lists them. When neither answers (a kernel before
    // 4.13 and ProtectProc=invisible hiding other users' processes), the
    // peer is let in: it passed the 0660 mode's group check to connect, and
    // that check, not this one, is then what decides (a hand-widened mode
    // on such a system widens access).
    readAllowed: (c) => group !== undefined && (c.gid === group || (c.groups ?? processGroups(c.pid, c.uid, o.procfs) ?? [group]).includes(group)),
  });
  ctx.server = () => ({ connections: server.connections, monitors: server.monitors, refused: { ...server.refused } });
  let bound;
  try {
    bound = await listenControl(o.path, server.accept, o.log, group, { yieldToLive: o.yieldToLive === true });
  } catch (e) {
    unsubscribe();
    throw e;
  }
  if (bound === undefined) {
    unsubscribe();
    o.daemon.onRequest = undefined;
    return { path: undefined, server: undefined, close: () => undefined };
  }
  o.log.info({ path: bound.path, ...(group !== undefined ? { group } : {}) }, 'control socket');
  ctx.info.control = bound.path;
  return {
    path: bound.path,
    server,
    close: () => {
      server.close();
      bound.close();
      unsubscribe();
    },
  };
}
