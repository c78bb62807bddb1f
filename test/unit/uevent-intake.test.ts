import { describe, expect, it } from 'vitest';
import { formatUevent } from '../../src/core/uevent.js';
import { StartupClock } from '../../src/startup-clock.js';
import { UeventIntake } from '../../src/uevent-intake.js';
import { FakeKernel, recordingLog } from '../support/fakes.js';

function intake() {
  const rec = recordingLog();
  const stats = { events: 0, adds: 0, rejected: 0 };
  const adds: string[] = [];
  const lost: [bigint, string][] = [];
  const i = new UeventIntake(rec.log, stats, (ev) => adds.push(ev.modalias!), (n, why) => lost.push([n, why]));
  return { i, stats, adds, lost, rec };
}

const add = (seq: number, modalias = 'platform:pcspkr'): Buffer => formatUevent('add', '/devices/x', { MODALIAS: modalias, SEQNUM: String(seq) });

describe('UeventIntake', () => {
  it('passes add uevents from the kernel and rejects other senders and malformed messages', () => {
    const t = intake();
    t.i.message(add(1), 0);
    t.i.message(add(2), 1234);
    t.i.message(Buffer.from('garbage'), 0);
    t.i.message(formatUevent('remove', '/devices/x', { MODALIAS: 'm', SEQNUM: '3' }), 0);
    expect(t.adds).toEqual(['platform:pcspkr']);
    expect(t.stats).toEqual({ events: 4, adds: 1, rejected: 2 });
    expect(t.rec.records().filter((r) => r.msg === 'uevent rejected').map((r) => r.reason)).toEqual(['sender is not the kernel', 'no environment after the header']);
  });

  it('reports a SEQNUM gap as lost events', () => {
    const t = intake();
    t.i.reset(10n);
    t.i.message(add(11), 0);
    t.i.message(add(15), 0);
    expect(t.lost).toEqual([[3n, 'seqnum gap']]);
  });

  it('reports a quiet socket that stays behind the kernel, once, then takes the kernel as baseline', () => {
    const t = intake();
    t.i.reset(10n);
    t.i.quietCheck(12n); // behind: remember the checkpoint
    expect(t.lost).toEqual([]);
    t.i.quietCheck(12n); // still behind it at the next check: the tail was lost
    expect(t.lost).toEqual([[2n, 'behind /sys/kernel/uevent_seqnum']]);
    t.i.quietCheck(12n);
    expect(t.lost).toHaveLength(1);
  });
});

describe('StartupClock', () => {
  it('marks each phase once and times the loads of the kernel it wraps', async () => {
    const clock = new StartupClock();
    clock.mark('socketBound');
    const first = clock.report().phases.socketBound;
    clock.mark('socketBound');
    const kernel = clock.timed(new FakeKernel({ b: 'ENODEV' }));
    await kernel.load({ name: 'a', path: '/a.ko', params: '' });
    await kernel.load({ name: 'b', path: '/b.ko', params: '' });
    const r = clock.report();
    expect(r.phases.socketBound).toBe(first);
    expect(r.phases.firstLoadStarted).toBeGreaterThanOrEqual(first!);
    expect(r.loadMs).toMatchObject({ count: 2 });
    expect(kernel.kind).toBe('fake'); // everything else is the wrapped kernel's
  });
});
