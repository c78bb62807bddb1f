/**
 * The uevent socket: the npm `netlink` package's raw socket on
 * NETLINK_KOBJECT_UEVENT, group 1, hardened against what was seen of the
 * package here (an overflow reaching its error path aborts the process):
 * - NETLINK_NO_ENOBUFS, so an overflow is never reported through the
 *   package's error path (which aborts the process: C++ terminate);
 * - a large receive buffer forced with SO_RCVBUFFORCE (SO_RCVBUF is capped by
 *   net.core.rmem_max);
 * both set with koffi setsockopt on the descriptor, which the package does not
 * expose: it is found through /proc/net/netlink (protocol 15, our port) and
 * /proc/self/fd. Loss is then detected from SEQNUM gaps by the caller.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { errnoName } from '../core/kernel.js';
import { libc } from './libc.js';
import { readBoundedSync } from './readfile.js';
// The raw layer alone: the package's index also loads its genl/nl80211/rt/wg
// layers, which cost 60 ms of start-up here (9 ms for this file).
import { RawNetlinkSocket } from 'netlink/dist/raw.js';

export const NETLINK_KOBJECT_UEVENT = 15;
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const EPERM = 1;
const SOL_NETLINK = 270;
const NETLINK_NO_ENOBUFS = 5;
/** /proc/net/netlink: one ~100-byte line per netlink socket; 4 MiB is tens of thousands of sockets. */
const NETLINK_TABLE_MAX = 4 * 1024 * 1024;

/** What the daemon needs from a uevent socket (tests use a fake). */
export interface UeventSource {
  /** Messages with the sender's netlink port (0 = the kernel). */
  onMessage(handler: (msg: Buffer, senderPort: number) => void): void;
  onError(handler: (err: Error) => void): void;
  /** False once the socket no longer receives (the add-on closes it after a poll error). */
  alive(): boolean;
  close(): void;
  readonly info: SocketInfo;
}

export interface SocketInfo {
  port: number;
  fd: number | undefined;
  /** Receive buffer the kernel reports after our request (it doubles what is asked). */
  rcvbuf: number;
  forced: boolean;
  noEnobufs: boolean;
  /** Why a setsockopt did not take, if one did not. */
  problems: string[];
}

let setsockoptFn: ((fd: number, level: number, name: number, val: Buffer, len: number) => number) | undefined;
function setsockopt(fd: number, level: number, name: number, value: number): number {
  setsockoptFn ??= libc().func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)') as (
    fd: number,
    level: number,
    name: number,
    val: Buffer,
    len: number,
  ) => number;
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  const r = setsockoptFn(fd, level, name, v, 4);
  return r === 0 ? 0 : koffi.errno();
}

/** The descriptor of our netlink socket, from /proc (the package keeps it private). */
export function findNetlinkFd(procfs: string, protocol: number, port: number): number | undefined {
  let inode: string | undefined;
  try {
    for (const line of readBoundedSync(join(procfs, 'net/netlink'), NETLINK_TABLE_MAX).toString('latin1').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && Number(f[1]) === protocol && Number(f[2]) === port) inode = f[9];
    }
  } catch {
    return undefined;
  }
  if (inode === undefined) return undefined;
  const want = `socket:[${inode}]`;
  const dir = join(procfs, 'self/fd');
  for (const name of readdirSync(dir)) {
    try {
      if (readlinkSync(join(dir, name)) === want) return Number(name);
    } catch {
      // fd closed meanwhile
    }
  }
  return undefined;
}

export class NetlinkUeventSource implements UeventSource {
  private readonly sock: RawNetlinkSocket;
  readonly info: SocketInfo;

  constructor(opts: { rcvbuf: number; procfs: string }) {
    // Bound in the constructor; membership right after: from here on, events queue up.
    this.sock = new RawNetlinkSocket(NETLINK_KOBJECT_UEVENT);
    this.sock.addMembership(1);
    const port = this.sock.address().port;
    const problems: string[] = [];
    const fd = findNetlinkFd(opts.procfs, NETLINK_KOBJECT_UEVENT, port);
    let noEnobufs = false;
    let forced = false;
    let forceErrno = 0;
    if (fd === undefined) {
      problems.push('socket descriptor not found in /proc/net/netlink: NETLINK_NO_ENOBUFS and SO_RCVBUFFORCE not set');
    } else {
      const e1 = setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1);
      noEnobufs = e1 === 0;
      if (!noEnobufs) problems.push(`NETLINK_NO_ENOBUFS failed (${errnoName(e1)})`);
      forceErrno = setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, opts.rcvbuf);
      forced = forceErrno === 0;
    }
    if (!forced) this.sock.setRecvBufferSize(opts.rcvbuf);
    if (fd !== undefined && !forced) {
      const why = forceErrno === EPERM ? 'EPERM: forcing needs CAP_NET_ADMIN' : errnoName(forceErrno);
      problems.push(`receive buffer not forced (${why}): ${this.sock.getRecvBufferSize()} bytes, capped by net.core.rmem_max; a burst of uevents past it is recovered by a resync walk`);
    }
    this.info = { port, fd, rcvbuf: this.sock.getRecvBufferSize(), forced, noEnobufs, problems };
    if (!noEnobufs) {
      // Without NETLINK_NO_ENOBUFS an overflow reaches the package's error
      // path, which aborts the process. Refuse to run that way.
      this.sock.close();
      throw new Error(`cannot protect the uevent socket from overflow: ${problems.join('; ')}`);
    }
  }

  onMessage(handler: (msg: Buffer, senderPort: number) => void): void {
    this.sock.on('message', (msg, rinfo) => handler(msg, rinfo.port));
    this.sock.on('truncatedMessage', () => undefined); // with message peeking the package never truncates
  }

  onError(handler: (err: Error) => void): void {
    this.sock.on('error', handler);
  }

  alive(): boolean {
    try {
      this.sock.address(); // throws "Netlink socket is closed" once the add-on closed it
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.sock.close();
  }
}
