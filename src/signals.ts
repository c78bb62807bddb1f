/**
 * Signals for the daemon, caught from the first line of our code: cli.ts
 * installs this before it imports anything else, so a SIGHUP or SIGTERM that
 * arrives while the modules load (~100 ms, seconds in an emulated VM) is kept
 * instead of taking its default action (SIGHUP would kill the process).
 * Signals that arrive before a handler is attached are replayed to it, in
 * order, once each kind (a second SIGHUP before start-up ends adds nothing).
 * This file imports nothing, so it costs nothing before the handlers are in.
 */
export type DaemonSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';

export interface SignalSource {
  /** Attach the handler; signals caught before are delivered to it now. */
  attach(handler: (signal: DaemonSignal) => void): void;
}

const SIGNALS: readonly DaemonSignal[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** Catches the daemon's signals on `proc` (the real process, or a test's emitter). */
export class CaughtSignals implements SignalSource {
  private readonly early: DaemonSignal[] = [];
  private handler: ((signal: DaemonSignal) => void) | undefined;

  constructor(proc: { on(event: DaemonSignal, listener: () => void): unknown } = process) {
    for (const sig of SIGNALS) {
      proc.on(sig, () => {
        if (this.handler !== undefined) this.handler(sig);
        else if (!this.early.includes(sig)) this.early.push(sig);
      });
    }
  }

  attach(handler: (signal: DaemonSignal) => void): void {
    this.handler = handler;
    for (const sig of this.early.splice(0)) handler(sig);
  }
}
