/**
 * Module file decompression by suffix: gzip through Node's zlib, zstd through
 * Node's zlib when it has it (Node >= 22.15) or else fzstd, and xz through
 * xz-decompress (both pure JS/WebAssembly, no native build, maintained and
 * small).
 *
 * Every format is decompressed as a stream and stops at one cap (a
 * decompression bomb of a few KB must not take GBs): the output collected so
 * far is at most the cap plus one chunk, so peak memory stays near the cap.
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Decompress as ZstdStream } from 'fzstd';
import { lazy } from './lazy.js';
import { capText, HotplugError } from '../errors.js';
import { type Compression } from './module-file.js';

export { type Compression, compressionOf } from './module-file.js';

/**
 * Upper bound on a module, decompressed (and on a module file read whole).
 * The largest real modules are a few tens of MiB (Debian 6.1's amdgpu.ko is
 * ~16 MiB stripped; NVIDIA's proprietary nvidia.ko ~60–90 MiB): 256 MiB is
 * ~3x the largest, yet a bomb stops at a quarter of a GiB.
 */
export const MAX_MODULE_BYTES = 256 * 1024 * 1024;

/** Fed to the pure-JS decoders at a time; between chunks the event loop runs. */
const INPUT_CHUNK = 1024 * 1024;

class TooLarge extends Error {}

/** Output chunks up to `cap` bytes in all; push() throws TooLarge past it. */
class Sink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Uint8Array): void {
    this.length += chunk.length;
    if (this.length > this.cap) throw new TooLarge();
    this.chunks.push(chunk);
  }
  result(): Uint8Array {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
  }
}

type ZlibWithZstd = typeof zlib & {
  zstdDecompress?: (buf: Uint8Array, opts: { maxOutputLength: number }, cb: (err: Error | null, out: Buffer) => void) => void;
};

/**
 * Decompress `buf` (the contents of `file`) into at most `cap` bytes; more is
 * E_DECOMPRESS naming the file and the cap, as is corrupt input.
 */
export async function decompress(buf: Uint8Array, kind: Compression, file: string, cap = MAX_MODULE_BYTES): Promise<Uint8Array> {
  if (kind === null) return buf;
  try {
    switch (kind) {
      case 'gzip':
        // zlib on libuv's threads; maxOutputLength stops it at the cap (RangeError).
        return await promisify(zlib.gunzip)(buf, { maxOutputLength: cap });
      case 'zstd': {
        // A frame that declares a window or size past the cap is refused before
        // any decoder allocates it (the same answer on every Node).
        for (const w of zstdWindows(buf)) if (w > cap) throw bomb(file, 'zstd', cap, 'declares a window or size of');
        const native = (zlib as ZlibWithZstd).zstdDecompress;
        if (native !== undefined) return await promisify(native)(buf, { maxOutputLength: cap });
        return await unzstd(buf, cap, file);
      }
      case 'xz':
        return await unxz(buf, cap);
    }
  } catch (e) {
    if (e instanceof HotplugError) throw e;
    if (e instanceof TooLarge || (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw bomb(file, kind, cap);
    throw new HotplugError('E_DECOMPRESS', `cannot decompress ${kind} data (${(e as Error).message})`, { file, cause: e });
  }
}

function bomb(file: string, kind: Compression, cap: number, what = 'decompresses to'): HotplugError {
  return new HotplugError('E_DECOMPRESS', `${kind} data ${what} more than the ${capText(cap)} cap: refused`, { file });
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * zstd through fzstd's streaming decoder. fzstd allocates each frame's window
 * as its header declares (up to 2 GiB), so the frames are checked first
 * (zstdWindows) and a window or content size past the cap is refused before
 * any allocation.
 */
async function unzstd(buf: Uint8Array, cap: number, file: string): Promise<Uint8Array> {
  for (const w of zstdWindows(buf)) {
    if (w > cap) throw bomb(file, 'zstd', cap, 'declares a window or size of');
  }
  const sink = new Sink(cap);
  const stream = new ZstdStream((chunk) => sink.push(chunk));
  if (buf.length === 0) stream.push(buf, true);
  for (let at = 0; at < buf.length; at += INPUT_CHUNK) {
    stream.push(buf.subarray(at, at + INPUT_CHUNK), at + INPUT_CHUNK >= buf.length);
    await tick();
  }
  return sink.result();
}

/**
 * The memory each zstd frame asks for: its window size, or its content size
 * when that is declared (RFC 8878 §3.1.1). Walks frame headers and block
 * headers only; malformed framing is left to the decoder to report.
 */
export function zstdWindows(b: Uint8Array): number[] {
  const out: number[] = [];
  const u32 = (i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16)) + b[i + 3]! * 0x1000000;
  let p = 0;
  while (p + 4 <= b.length) {
    const magic = u32(p);
    if (magic >>> 4 === 0x184d2a5) {
      if (p + 8 > b.length) break;
      p += 8 + u32(p + 4); // skippable frame
      continue;
    }
    if (magic !== 0xfd2fb528 || p + 6 > b.length) break;
    const fhd = b[p + 4]!;
    const fcsFlag = fhd >> 6;
    const single = (fhd >> 5) & 1;
    const checksum = (fhd >> 2) & 1;
    const dictBytes = [0, 1, 2, 4][fhd & 3]!;
    let q = p + 5;
    let window = 0;
    if (!single) {
      const wd = b[q++]!;
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    q += dictBytes;
    const fcsBytes = fcsFlag === 0 ? single : 1 << fcsFlag;
    let content = 0;
    for (let i = fcsBytes - 1; i >= 0; i--) content = content * 256 + (b[q + i] ?? 0);
    if (fcsFlag === 1) content += 256;
    q += fcsBytes;
    out.push(Math.max(window, content));
    for (;;) {
      if (q + 3 > b.length) return out;
      const h = b[q]! | (b[q + 1]! << 8) | (b[q + 2]! << 16);
      const type = (h >> 1) & 3;
      q += 3 + (type === 1 ? 1 : h >>> 3);
      if (h & 1) break;
    }
    p = q + (checksum ? 4 : 0);
  }
  return out;
}

/** xz-decompress, loaded on first use (most kernels ship uncompressed or zstd modules) or by the daemon's preload. */
export const loadXz = lazy(() => import('xz-decompress'));

/** xz through xz-decompress's web stream, read chunk by chunk and cancelled at the cap. */
async function unxz(buf: Uint8Array, cap: number): Promise<Uint8Array> {
  const { default: xz } = await loadXz();
  const reader = new xz.XzReadableStream(new Blob([new Uint8Array(buf)]).stream()).getReader();
  const sink = new Sink(cap);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      sink.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    throw e;
  }
  return sink.result();
}
