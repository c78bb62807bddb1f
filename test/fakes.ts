/** Test doubles for the system seams, and a pino logger whose records tests can read. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { type UeventSource } from '../src/sys/netlink.js';
import { errnoNumber, type Kernel, type LoadOutcome, type LoadRequestForKernel, type ModuleState } from '../src/core/kernel.js';

/** A scriptable kernel: per module, "ok" or an errno name; records every call and the peak concurrency. */
export class FakeKernel implements Kernel {
  readonly kind = 'fake';
  readonly loads = true;
  readonly calls: LoadRequestForKernel[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly script: Record<string, string> = {},
    private readonly loaded = new Map<string, ModuleState>(),
    private readonly delayMs = 0,
  ) {}

  loadedModules(): Map<string, ModuleState> {
    return new Map(this.loaded);
  }

  async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
    this.calls.push(req);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      else await Promise.resolve();
      const what = this.script[req.name] ?? 'ok';
      if (what === 'ok') {
        this.loaded.set(req.name, 'live');
        return { ok: true };
      }
      return { ok: false, errno: errnoNumber(what), code: what };
    } finally {
      this.inFlight--;
    }
  }
}

export interface Recorded {
  log: Logger;
  records: () => Record<string, unknown>[];
}

/** A real pino logger writing JSON lines into memory (pino's own test pattern). */
export function recordingLog(level = 'debug'): Recorded {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const log = pino({ level, base: null }, sink);
  return { log, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

/** A uevent source the test feeds by hand; `dead` simulates the add-on closing the socket. */
export class FakeUeventSource implements UeventSource {
  handler: ((msg: Buffer, port: number) => void) | undefined;
  errorHandler: ((err: Error) => void) | undefined;
  dead = false;
  closed = 0;
  readonly info = { port: 1, fd: undefined, rcvbuf: 0, forced: false, noEnobufs: true, problems: [] };
  onMessage(h: (msg: Buffer, port: number) => void): void {
    this.handler = h;
  }
  onError(h: (err: Error) => void): void {
    this.errorHandler = h;
  }
  alive(): boolean {
    return !this.dead;
  }
  close(): void {
    this.closed++;
  }
}
