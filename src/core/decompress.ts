/**
 * Module file decompression by suffix: gzip through Node's zlib, zstd through
 * fzstd and xz through xz-decompress (both pure JS/WebAssembly, no native
 * build, maintained and small).
 */
import { gunzipSync } from 'node:zlib';
import { decompress as unzstd } from 'fzstd';
import { HotplugError } from '../errors.js';

export type Compression = 'gzip' | 'xz' | 'zstd' | null;

export function compressionOf(path: string): Compression {
  if (path.endsWith('.ko.gz')) return 'gzip';
  if (path.endsWith('.ko.xz')) return 'xz';
  if (path.endsWith('.ko.zst')) return 'zstd';
  return null;
}

/** Upper bound on a decompressed module (the largest real ones are a few tens of MiB). */
export const MAX_MODULE_BYTES = 512 * 1024 * 1024;

export async function decompress(buf: Uint8Array, kind: Compression, file: string): Promise<Uint8Array> {
  try {
    switch (kind) {
      case null:
        return buf;
      case 'gzip':
        return gunzipSync(buf, { maxOutputLength: MAX_MODULE_BYTES });
      case 'zstd':
        return unzstd(buf);
      case 'xz': {
        // Loaded on first use: most kernels ship uncompressed or zstd modules.
        const { default: xz } = await import('xz-decompress');
        const stream = new xz.XzReadableStream(new Blob([new Uint8Array(buf)]).stream());
        return new Uint8Array(await new Response(stream).arrayBuffer());
      }
    }
  } catch (e) {
    throw new HotplugError('E_DECOMPRESS', `cannot decompress ${kind} data (${(e as Error).message})`, { file, cause: e });
  }
}
