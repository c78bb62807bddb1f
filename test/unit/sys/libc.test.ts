import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { libc, libcInMaps } from '../../../src/sys/libc.js';

describe('the C library', () => {
  it('is found in a maps text for glibc and for musl, and not in one without it', () => {
    const line = (path: string): string => `7f764de9f000-7f764dec5000 r--p 00000000 fe:00 339380                     ${path}`;
    expect(libcInMaps([line('/usr/bin/node'), line('/usr/lib/x86_64-linux-gnu/libc.so.6')].join('\n'))).toBe('/usr/lib/x86_64-linux-gnu/libc.so.6');
    expect(libcInMaps(line('/lib/ld-musl-x86_64.so.1'))).toBe('/lib/ld-musl-x86_64.so.1');
    expect(libcInMaps([line('/usr/lib/libcrypto.so.3'), '7ffd-7ffe r-xp 00000000 00:00 0   [vdso]'].join('\n'))).toBeUndefined();
  });

  it('is the one this process runs on, and it answers a call', () => {
    const path = libcInMaps(readFileSync('/proc/self/maps', 'latin1'));
    expect(path !== undefined && existsSync(path)).toBe(true);
    const getpid = libc().func('int getpid(void)') as () => number;
    expect(getpid()).toBe(process.pid);
  });
});
