/**
 * ADDR:PORT flag values (--metrics-listen): IP literals only, so that
 * start-up never waits on a name lookup: `127.0.0.1:9101`, `[::1]:9101`,
 * `0.0.0.0:9101`; port 0 picks a free port (tests).
 */
import { isIP } from 'node:net';
import { HotplugError } from '../errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** "127.0.0.1:9101" or "[::1]:9101" -> host and port; anything else is a usage error naming `flag`. */
export function parseListenAddress(value: string, flag = '--metrics-listen'): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (m === null || host === undefined || !(port >= 0 && port <= 65535)) {
    throw new HotplugError('E_USAGE', `${flag} takes ADDR:PORT with an IP address, e.g. 127.0.0.1:9101 or [::1]:9101 (got "${value}")`);
  }
  if (isIP(host) !== (m[1] !== undefined ? 6 : 4)) {
    throw new HotplugError('E_USAGE', `${flag}: "${host}" is not an IPv${m[1] !== undefined ? 6 : 4} address (got "${value}")`);
  }
  return { host, port };
}

/** "127.0.0.1:9101" / "[::1]:9101" for an address. */
export function formatAddress(a: ListenAddress): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
