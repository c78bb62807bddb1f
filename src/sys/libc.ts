/**
 * The C library, opened once through koffi for every binding (finit_module,
 * setsockopt, sendto): the one this process already runs on, found in
 * /proc/self/maps — glibc's libc.so.6 or musl's libc — rather than a name
 * hard-coded for glibc.
 */
import koffi from 'koffi';
import { readBoundedSync } from './readfile.js';

/** /proc/self/maps of a Node process: a few hundred KiB; 16 MiB is far past it. */
const MAPS_MAX = 16 * 1024 * 1024;
const LIBC = /\/(libc\.so\.6|libc\.musl-[^/]+\.so\.1|ld-musl-[^/]+\.so\.1|libc\.so)$/;

/** The C library's path in a /proc/PID/maps text, or undefined when none is mapped. */
export function libcInMaps(maps: string): string | undefined {
  for (const line of maps.split('\n')) {
    const path = line.slice(line.indexOf('/'));
    if (line.includes('/') && LIBC.test(path)) return path;
  }
  return undefined;
}

let lib: ReturnType<typeof koffi.load> | undefined;

/** The C library (opened on first use); glibc's soname when /proc is not readable. */
export function libc(procfs = '/proc'): ReturnType<typeof koffi.load> {
  if (lib !== undefined) return lib;
  let path: string | undefined;
  try {
    path = libcInMaps(readBoundedSync(`${procfs}/self/maps`, MAPS_MAX).toString('latin1'));
  } catch {
    // no /proc: fall back to the soname
  }
  lib = koffi.load(path ?? 'libc.so.6');
  return lib;
}
