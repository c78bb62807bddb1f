/**
 * Who is at the other end of a Unix socket: SO_PEERCRED (the credentials the
 * peer had when it connected, filled in by the kernel, not claimed by the
 * client) read with getsockopt through koffi on the accepted socket's
 * descriptor; its supplementary groups with SO_PEERGROUPS (Linux 4.13;
 * also filled in at connect(), and readable where ProtectProc=invisible hides
 * the peer's /proc/PID), else from /proc/PID/status; group names from
 * /etc/group.
 */
import { type Socket } from 'node:net';
import { HotplugError } from '../errors.js';
import { libc } from './libc.js';
import { readBoundedSync } from './readfile.js';

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups (SO_PEERGROUPS); undefined when the kernel does not give them. */
  groups?: number[];
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;
/** NGROUPS_MAX is 65536; a peer with more than 1024 groups is asked again with the size the kernel names. */
const GROUPS_FIRST = 1024;
/** /proc/PID/status and /etc/group are a few KiB; more is not one of them. */
const TEXT_MAX = 1024 * 1024;

let getsockoptFn: ((fd: number, level: number, name: number, val: Buffer, len: Buffer) => number) | undefined;

/**
 * The descriptor of a connected net.Socket. Node does not export it; its
 * libuv pipe handle has it as `_handle.fd` (-1 or absent once closed).
 */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** The peer's pid, uid and gid (struct ucred), or undefined when they cannot be read. */
export function peerCredentials(socket: Socket): PeerCred | undefined {
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  try {
    getsockoptFn ??= libc().func('int getsockopt(int fd, int level, int optname, void *optval, void *optlen)') as unknown as typeof getsockoptFn;
    const cred = Buffer.alloc(12);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(12);
    if (getsockoptFn!(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0 || len.readUInt32LE() !== 12) return undefined;
    const groups = peerGroups(fd);
    return { pid: cred.readInt32LE(0), uid: cred.readUInt32LE(4), gid: cred.readUInt32LE(8), ...(groups !== undefined ? { groups } : {}) };
  } catch {
    return undefined;
  }
}

/** SO_PEERGROUPS: the peer's supplementary groups at connect(), or undefined when the kernel does not answer. */
function peerGroups(fd: number): number[] | undefined {
  const len = Buffer.alloc(4);
  for (let size = GROUPS_FIRST * 4; size <= 65536 * 4; ) {
    const buf = Buffer.alloc(size);
    len.writeUInt32LE(size);
    if (getsockoptFn!(fd, SOL_SOCKET, SO_PEERGROUPS, buf, len) === 0) {
      const n = Math.floor(Math.min(len.readUInt32LE(), size) / 4);
      return Array.from({ length: n }, (_, i) => buf.readUInt32LE(i * 4));
    }
    // ERANGE: len now holds the size needed; anything else (an old kernel: ENOPROTOOPT) is no answer.
    const need = len.readUInt32LE();
    if (need <= size) return undefined;
    size = need;
  }
  return undefined;
}

/**
 * The supplementary groups of process `pid` whose real uid is `uid`, from
 * procfs (undefined when unreadable or when the pid now belongs to someone
 * else: the answer is only trusted for the peer that is still connected).
 */
export function processGroups(pid: number, uid: number, procfs = '/proc'): number[] | undefined {
  try {
    const text = readBoundedSync(`${procfs}/${pid}/status`, TEXT_MAX).toString('latin1');
    const uids = /^Uid:\s+(\d+)/m.exec(text);
    const groups = /^Groups:[ \t]*([\d \t]*)$/m.exec(text);
    if (uids === null || Number(uids[1]) !== uid || groups === null) return undefined;
    return groups[1]!.trim() === '' ? [] : groups[1]!.trim().split(/\s+/).map(Number);
  } catch {
    return undefined;
  }
}

/** --control-group: a number is a gid; a name is looked up in /etc/group. */
export function resolveGroup(value: string, groupFile = '/etc/group'): number {
  if (/^\d{1,10}$/.test(value) && Number(value) < 2 ** 32 - 1) return Number(value);
  let text: string;
  try {
    text = readBoundedSync(groupFile, TEXT_MAX).toString('utf8');
  } catch (e) {
    throw new HotplugError('E_INPUT', `cannot read it to find group "${value}": ${(e as Error).message}`, { file: groupFile });
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === value && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new HotplugError('E_USAGE', `--control-group: no group named "${value}" in ${groupFile}`);
}
