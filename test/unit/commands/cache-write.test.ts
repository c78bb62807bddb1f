/**
 * The daemon's index cache write (commands/common.ts writeCacheRetrying): one
 * record for the outcome, and a read-only root (EROFS at early boot) tried
 * again until it is writable.
 */
import { describe, expect, it } from 'vitest';
import { writeCacheRetrying } from '../../../src/commands/common.js';
import { type CacheWriteResult } from '../../../src/sys/index-cache.js';

function recorder(): { log: Parameters<typeof writeCacheRetrying>[1]; lines: { level: string; msg: string; obj: object }[] } {
  const lines: { level: string; msg: string; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj });
  return { log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines };
}

const erofs: CacheWriteResult = { written: false, file: '/c/x.idx', level: 'info', problem: '/c is not writable (EROFS)', code: 'EROFS' };
const done: CacheWriteResult = { written: true, file: '/c/x.idx', bytes: 10 };

describe('writeCacheRetrying', () => {
  it('retries a read-only file system until the write succeeds, with one refusal and one success record', async () => {
    const results = [erofs, erofs, done];
    let calls = 0;
    const { log, lines } = recorder();
    await writeCacheRetrying(() => Promise.resolve(results[calls++]!), log, () => false, [0, 0, 0, 0]);
    expect(calls).toBe(3);
    expect(lines.map((l) => `${l.level} ${l.msg}`)).toEqual(['info index cache not written', 'info index cache written']);
  });

  it('does not retry other refusals, and stops when a newer write supersedes it', async () => {
    let calls = 0;
    const { log } = recorder();
    await writeCacheRetrying(() => (calls++, Promise.resolve({ ...erofs, code: 'EACCES' })), log, () => false, [0, 0]);
    expect(calls).toBe(1);
    calls = 0;
    await writeCacheRetrying(() => (calls++, Promise.resolve(erofs)), log, () => true, [0, 0]);
    expect(calls).toBe(1);
  });
});
