/** The why/status memory: bounded rings, matching by devpath, modalias and module, failed modules. */
import { describe, expect, it } from 'vitest';
import { DECISION_CAP, FAILED_CAP, History, REQUEST_CAP, WHY_LIMIT } from '../../../src/control/history.js';

const rec = (o: Record<string, unknown>): string => JSON.stringify({ level: 30, time: 't', pid: 1, ...o, msg: 'module' });

describe('History', () => {
  it('answers by devpath, modalias and module, and says when nothing reached a name', () => {
    const h = new History(() => 'now');
    h.request({ origin: 'uevent', devpath: '/devices/a', modalias: 'pci:v1', seqnum: '5' });
    h.record(rec({ module: 'e1000', result: 'failed', errno: 2, code: 'ENOENT', devpath: '/devices/a', modalias: 'pci:v1', origin: 'uevent' }));
    h.record(rec({ module: 'dep', result: 'skipped', reason: 'dependency-failed', dependencyOf: 'e1000' }));
    expect(h.why('/devices/a').totals).toEqual({ requests: 1, decisions: 1 });
    expect(h.why('pci:v1').requests).toEqual([{ time: 'now', origin: 'uevent', devpath: '/devices/a', modalias: 'pci:v1', seqnum: '5' }]);
    expect(h.why('e1000').decisions.map((d) => d.module)).toEqual(['e1000', 'dep']);
    expect(h.why('nothing').totals).toEqual({ requests: 0, decisions: 0 });
    expect(h.failed()).toEqual([{ module: 'e1000', errno: 2, code: 'ENOENT', time: 't' }]);
    h.record(rec({ module: 'e1000', result: 'loaded' }));
    expect(h.failed()).toEqual([]);
  });

  it('keeps only the newest entries, and answers the newest few', () => {
    const h = new History();
    for (let i = 0; i < REQUEST_CAP + 10; i++) h.request({ origin: 'coldplug', devpath: '/d', modalias: `m${i}` });
    for (let i = 0; i < DECISION_CAP + 10; i++) h.record(rec({ module: 'x', result: 'would-load', n: i }));
    const w = h.why('/d');
    expect(w.totals.requests).toBe(REQUEST_CAP);
    expect(w.requests).toHaveLength(WHY_LIMIT);
    expect(w.requests.at(-1)!.modalias).toBe(`m${REQUEST_CAP + 9}`);
    expect(h.why('x').totals.decisions).toBe(DECISION_CAP);
    for (let i = 0; i < FAILED_CAP + 5; i++) h.record(rec({ module: `f${i}`, result: 'failed', code: 'EIO', errno: 5 }));
    expect(h.failed()).toHaveLength(FAILED_CAP);
  });

  it('ignores records that are not per-module ones, and lines that are not JSON', () => {
    const h = new History();
    h.record('{"msg":"module" garbage');
    h.record(JSON.stringify({ msg: 'settled', module: 'x', result: 'failed' }));
    expect(h.why('x').totals.decisions).toBe(0);
  });
});
