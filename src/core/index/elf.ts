/**
 * Reading a kernel module's `.modinfo` section from its ELF image (32- or
 * 64-bit, either byte order). Every offset is bounds-checked: a truncated or
 * hostile file gives E_ELF, never an out-of-range read.
 */
import { HotplugError } from '../../errors.js';
import { underscores } from '../glob.js';

export interface Modinfo {
  name?: string;
  aliases: string[];
  depends: string[];
  softdeps: string[];
}

function fail(file: string, problem: string): HotplugError {
  return new HotplugError('E_ELF', problem, { file });
}

/** The raw bytes of the named section. */
export function elfSection(buf: Uint8Array, wanted: string, file: string): Uint8Array | null {
  if (buf.length < 52 || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) {
    throw fail(file, 'not an ELF file');
  }
  const is64 = buf[4] === 2;
  if (buf[4] !== 1 && buf[4] !== 2) throw fail(file, 'unknown ELF class');
  const le = buf[5] === 1;
  if (buf[5] !== 1 && buf[5] !== 2) throw fail(file, 'unknown ELF byte order');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (o: number): number => {
    if (o + 2 > buf.length) throw fail(file, 'truncated ELF file');
    return view.getUint16(o, le);
  };
  const u32 = (o: number): number => {
    if (o + 4 > buf.length) throw fail(file, 'truncated ELF file');
    return view.getUint32(o, le);
  };
  const word = (o: number): number => {
    if (!is64) return u32(o);
    if (o + 8 > buf.length) throw fail(file, 'truncated ELF file');
    const v = view.getBigUint64(o, le);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(file, 'ELF offset out of range');
    return Number(v);
  };
  const shoff = word(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  const shstrndx = u16(is64 ? 0x3e : 0x32);
  if (shentsize < (is64 ? 64 : 40) || shnum === 0 || shstrndx >= shnum) throw fail(file, 'bad ELF section header table');
  if (shoff + shnum * shentsize > buf.length) throw fail(file, 'truncated ELF section header table');
  const section = (i: number): { name: number; offset: number; size: number } => {
    const h = shoff + i * shentsize;
    return is64
      ? { name: u32(h), offset: word(h + 24), size: word(h + 32) }
      : { name: u32(h), offset: u32(h + 16), size: u32(h + 20) };
  };
  const strtab = section(shstrndx);
  if (strtab.offset + strtab.size > buf.length) throw fail(file, 'truncated ELF string table');
  // Compare at most wanted.length + 1 bytes per section name (never scan
  // for the NUL): many headers naming one long unterminated string would
  // otherwise cost sections x table size.
  const strEnd = strtab.offset + strtab.size;
  const isWanted = (at: number): boolean => {
    if (at + wanted.length > strEnd) return false;
    for (let k = 0; k < wanted.length; k++) if (buf[at + k] !== wanted.charCodeAt(k)) return false;
    // Ends with a NUL, or with the table (read as ending there, as before).
    return at + wanted.length === strEnd || buf[at + wanted.length] === 0;
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (s.name >= strtab.size || !isWanted(strtab.offset + s.name)) continue;
    if (s.offset + s.size > buf.length) throw fail(file, `truncated ${wanted} section`);
    return buf.subarray(s.offset, s.offset + s.size);
  }
  return null;
}

/** Parse NUL-separated key=value records of a .modinfo section. */
export function parseModinfo(section: Uint8Array): Modinfo {
  const info: Modinfo = { aliases: [], depends: [], softdeps: [] };
  for (const rec of Buffer.from(section).toString('latin1').split('\0')) {
    const eq = rec.indexOf('=');
    if (eq <= 0) continue;
    const key = rec.slice(0, eq);
    const value = rec.slice(eq + 1);
    if (key === 'alias') info.aliases.push(value);
    else if (key === 'name') info.name = value;
    else if (key === 'softdep') info.softdeps.push(value);
    else if (key === 'depends') for (const d of value.split(',')) if (d !== '') info.depends.push(underscores(d));
  }
  return info;
}

export function readModinfo(buf: Uint8Array, file: string): Modinfo {
  const s = elfSection(buf, '.modinfo', file);
  if (s === null) throw fail(file, 'no .modinfo section (not a kernel module)');
  return parseModinfo(s);
}
