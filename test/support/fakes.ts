/** Test doubles for the system seams, and a pino logger whose records tests can read. */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { type UeventSource } from '../../src/sys/netlink.js';
import { type CommandOutcome, type CommandRunner, type InstallCommandRequest } from '../../src/core/install.js';
import { errnoNumber, type Kernel, type LoadOutcome, type LoadRequestForKernel, type ModuleState } from '../../src/core/kernel.js';

/** One event of a FakeKernel: a load started, or ended with "ok" or an errno name. */
export interface KernelEvent {
  name: string;
  at: 'start' | 'end';
  outcome?: string;
}

/**
 * A scriptable kernel: per module, "ok", an errno name, or a list of them (one
 * per attempt, the last repeated); "hang" never answers until release(name).
 * Records every call, the start and end of every load (events), and the peak
 * concurrency; rmmod() removes a module. delayMs is a number or, per load, a
 * function of the module name (random delays).
 */
export class FakeKernel implements Kernel {
  readonly kind = 'fake';
  readonly loads = true;
  readonly calls: LoadRequestForKernel[] = [];
  readonly events: KernelEvent[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private readonly held = new Map<string, (what: string) => void>();
  constructor(
    private readonly script: Record<string, string | string[]> = {},
    private readonly loaded = new Map<string, ModuleState>(),
    private readonly delayMs: number | ((name: string) => number) = 0,
  ) {}

  loadedModules(): Map<string, ModuleState> {
    return new Map(this.loaded);
  }

  moduleState(name: string): ModuleState | undefined {
    return this.loaded.get(name);
  }

  /** As rmmod: the kernel forgets the module. */
  rmmod(name: string): void {
    this.loaded.delete(name);
  }

  /** Answer a "hang" load now, with "ok" or an errno name. */
  release(name: string, what = 'ok'): void {
    const r = this.held.get(name);
    if (r === undefined) throw new Error(`no load of ${name} is hanging`);
    this.held.delete(name);
    r(what);
  }

  private next(name: string): string {
    const s = this.script[name] ?? 'ok';
    if (typeof s === 'string') return s;
    const n = this.calls.filter((c) => c.name === name).length;
    return s[Math.min(n, s.length) - 1] ?? 'ok';
  }

  async load(req: LoadRequestForKernel): Promise<LoadOutcome> {
    this.calls.push(req);
    this.events.push({ name: req.name, at: 'start' });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let what = this.next(req.name);
    try {
      const delayMs = typeof this.delayMs === 'function' ? this.delayMs(req.name) : this.delayMs;
      if (what === 'hang') what = await new Promise<string>((r) => this.held.set(req.name, r));
      else if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      else await Promise.resolve();
      if (what === 'ok') {
        this.loaded.set(req.name, 'live');
        return { ok: true };
      }
      return { ok: false, errno: errnoNumber(what), code: what };
    } finally {
      this.inFlight--;
      this.events.push({ name: req.name, at: 'end', outcome: what });
    }
  }
}

/** A CommandRunner double: records each command, answers with an exit status (default 0). */
/**
 * A scriptable install-command runner: per module, an exit status (default
 * 0), "timeout" (killed at its time limit), or "hang": no outcome until
 * release(module), as a process SIGKILL cannot end. Records every request.
 */
export class FakeRunner implements CommandRunner {
  readonly runs: InstallCommandRequest[] = [];
  private readonly held = new Map<string, (exitCode: number | null) => void>();
  constructor(private readonly exitCodes: Record<string, number | 'hang' | 'timeout'> = {}) {}

  /** End a hanging command (exitCode null: killed, as by the SIGKILL it finally got). */
  release(module: string, exitCode: number | null = null): void {
    this.held.get(module)?.(exitCode);
    this.held.delete(module);
  }

  async run(req: InstallCommandRequest): Promise<CommandOutcome> {
    this.runs.push(req);
    await Promise.resolve();
    const what = this.exitCodes[req.module] ?? 0;
    if (what === 'timeout') return { exitCode: null, signal: null, timedOut: true, output: '', truncated: false };
    const exitCode = what === 'hang' ? await new Promise<number | null>((r) => this.held.set(req.module, r)) : what;
    return { exitCode, signal: exitCode === null ? 'SIGKILL' : null, timedOut: false, output: '', truncated: false };
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
