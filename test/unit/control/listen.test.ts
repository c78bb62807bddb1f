/**
 * Where run listens when no --control is given: a default path a live daemon
 * holds fails start-up, except for run --demo, which leaves it to that daemon.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listenControl } from '../../../src/control/listen.js';
import { bindControlSocket, type BoundSocket } from '../../../src/sys/control-socket.js';

const bound: BoundSocket[] = [];
afterEach(() => {
  for (const b of bound.splice(0)) b.close();
});

function recordingLog(): { warn: (o: object, m: string) => void; info: () => void; error: () => void; debug: () => void; warnings: string[] } {
  const warnings: string[] = [];
  return { warn: (_o, m) => warnings.push(m), info: () => undefined, error: () => undefined, debug: () => undefined, warnings };
}

describe('listenControl', () => {
  it('fails start-up when a live daemon holds the default path, unless asked to leave it to that daemon (run --demo)', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'hotplugd-listen-')), 'control');
    bound.push(await bindControlSocket(path, (s) => s.destroy()));
    const log = recordingLog();
    await expect(listenControl(undefined, (s) => s.destroy(), log as never, undefined, { defaultPath: path, uid: 0 })).rejects.toThrow('a running daemon already listens');
    const demo = await listenControl(undefined, (s) => s.destroy(), log, undefined, { defaultPath: path, uid: 0, yieldToLive: true });
    expect(demo).toBeUndefined();
    expect(log.warnings).toEqual([expect.stringMatching(/^no control socket/)]);
  });
});
