/**
 * What the daemon does with each message from the uevent socket, and how it
 * notices lost ones: only kernel senders (port 0) and well-formed uevents
 * (core/uevent.ts) pass, rejections are logged rate-limited; a SEQNUM gap,
 * or a quiet socket whose last SEQNUM stays behind the kernel's, is a loss.
 * `add` uevents with a MODALIAS go to `onAdd`; losses to `onLost`.
 */
import { type Log } from './core/queue.js';
import { parseUevent, SeqnumTracker, type Uevent } from './core/uevent.js';
import { RejectLog } from './daemon-state.js';

export interface IntakeStats {
  events: number;
  adds: number;
  rejected: number;
}

export class UeventIntake {
  private readonly tracker = new SeqnumTracker();
  private readonly rejects: RejectLog;
  /** Kernel seqnum seen at the previous quiet check, when ours was behind it. */
  private checkpoint: bigint | undefined;

  constructor(
    log: Log,
    private readonly stats: IntakeStats,
    private readonly onAdd: (ev: Uevent) => void,
    private readonly onLost: (count: bigint, reason: string) => void,
  ) {
    this.rejects = new RejectLog(log);
  }

  /** The kernel's current seqnum is the baseline (at start, and after a quiet socket fell behind). */
  reset(kernelSeqnum: bigint | undefined): void {
    this.tracker.reset(kernelSeqnum);
  }

  /** The last SEQNUM read (or the baseline set by reset). */
  get latest(): bigint | undefined {
    return this.tracker.latest;
  }

  message(msg: Buffer, port: number): void {
    this.stats.events++;
    if (port !== 0) {
      this.stats.rejected++;
      this.rejects.add('sender is not the kernel', port);
      return;
    }
    const r = parseUevent(msg);
    if (!r.ok) {
      this.stats.rejected++;
      this.rejects.add(r.reason, port);
      return;
    }
    const ev = r.event;
    const gap = this.tracker.see(ev.seqnum!);
    if (gap > 0n) this.onLost(gap, 'seqnum gap');
    if (ev.action === 'add' && ev.modalias !== undefined && ev.modalias !== '') {
      this.stats.adds++;
      this.onAdd(ev);
    }
  }

  /** A quiet socket whose last SEQNUM stays behind the kernel's (`kernelSeqnum`) lost the tail of a burst. */
  quietCheck(kernelSeqnum: bigint | undefined): void {
    if (kernelSeqnum === undefined) return;
    const latest = this.tracker.latest ?? 0n;
    if (this.checkpoint !== undefined && latest < this.checkpoint) {
      this.onLost(this.checkpoint - latest, 'behind /sys/kernel/uevent_seqnum');
      this.tracker.reset(kernelSeqnum);
    }
    this.checkpoint = kernelSeqnum > latest ? kernelSeqnum : undefined;
  }
}
