/**
 * systemd's notify protocol without native builds: datagrams to
 * $NOTIFY_SOCKET over an AF_UNIX socket made through koffi (Node's dgram has
 * no unix sockets). Abstract addresses ("@name") are supported.
 */
import koffi from 'koffi';
import { libc } from './libc.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;

export interface Notifier {
  readonly enabled: boolean;
  /** Why the last notification could not be sent, if it could not. */
  readonly lastError?: string | undefined;
  notify(state: string): void;
  close(): void;
}

interface Libc {
  socket: (domain: number, type: number, proto: number) => number;
  sendto: (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, alen: number) => number;
  close: (fd: number) => number;
}

let bound: Libc | undefined;
function bindLibc(): Libc {
  if (bound) return bound;
  const lib = libc();
  bound = {
    socket: lib.func('int socket(int domain, int type, int protocol)') as Libc['socket'],
    sendto: lib.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)') as Libc['sendto'],
    close: lib.func('int close(int fd)') as Libc['close'],
  };
  return bound;
}

export class SdNotifier implements Notifier {
  readonly enabled: boolean;
  private fd = -1;
  private readonly addr: Buffer = Buffer.alloc(0);
  private readonly addrLen: number = 0;
  lastError: string | undefined;

  constructor(socketPath: string | undefined = process.env.NOTIFY_SOCKET) {
    this.enabled = socketPath !== undefined && socketPath !== '' && (socketPath.startsWith('/') || socketPath.startsWith('@'));
    if (!this.enabled || socketPath === undefined) return;
    const path = Buffer.from(socketPath, 'utf8');
    if (path.length > 107) {
      this.enabled = false;
      this.lastError = 'NOTIFY_SOCKET path too long';
      return;
    }
    this.addr = Buffer.alloc(110);
    this.addr.writeUInt16LE(AF_UNIX, 0);
    path.copy(this.addr, 2);
    if (socketPath.startsWith('@')) {
      this.addr[2] = 0; // abstract namespace: leading NUL, exact length
      this.addrLen = 2 + path.length;
    } else {
      this.addrLen = 2 + path.length + 1;
    }
  }

  notify(state: string): void {
    if (!this.enabled) return;
    const c = bindLibc();
    if (this.fd < 0) {
      this.fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (this.fd < 0) {
        this.lastError = `socket: errno ${koffi.errno()}`;
        return;
      }
    }
    const msg = Buffer.from(state, 'utf8');
    if (c.sendto(this.fd, msg, msg.length, MSG_NOSIGNAL, this.addr, this.addrLen) < 0) this.lastError = `sendto: errno ${koffi.errno()}`;
  }

  close(): void {
    if (this.fd >= 0) bindLibc().close(this.fd);
    this.fd = -1;
  }
}
