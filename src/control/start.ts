/**
 * The control socket of a running daemon, assembled: the history fed by the
 * daemon's requests and the log's records, the handler table, the server
 * with its access rule, bound where listen.ts decides.
 */
import { type Daemon } from '../daemon.js';
import { type RecordTap } from '../log.js';
import { type Log } from '../core/queue.js';
import { peerCredentials, processGroups } from '../sys/peercred.js';
import { controlHandlers, type ControlContext } from './handlers.js';
import { History } from './history.js';
import { listenControl } from './listen.js';
import { ControlServer } from './server.js';

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
}

export interface Control {
  path: string | undefined;
  server: ControlServer | undefined;
  close(): void;
}

export async function startControl(o: ControlOptions): Promise<Control> {
  if (o.path === '') return { path: undefined, server: undefined, close: () => undefined };
  const history = new History();
  const unsubscribe = o.tap.subscribe((l) => history.record(l));
  o.daemon.onRequest = (r) => history.request(r);
  const ctx: ControlContext = { daemon: o.daemon, tap: o.tap, history, info: o.info, startedAt: new Date() };
  const group = o.group;
  const server = new ControlServer({
    handlers: controlHandlers(ctx),
    log: o.log,
    credentials: peerCredentials,
    // The primary gid from SO_PEERCRED, or a supplementary group of the
    // connected process (the socket file's 0660 already lets only members in).
    readAllowed: (c) => group !== undefined && (c.gid === group || (processGroups(c.pid, c.uid, o.procfs)?.includes(group) ?? false)),
  });
  ctx.server = () => ({ connections: server.connections, monitors: server.monitors, refused: { ...server.refused } });
  let bound;
  try {
    bound = await listenControl(o.path, server.accept, o.log, group);
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
