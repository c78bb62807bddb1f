/**
 * A QEMU VM for the end-to-end test: console (ttyS0) to a file that is
 * followed line by line, a command channel on ttyS1, and QMP.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

/**
 * The device set both the e2e test and bench:boot boot with, over several
 * buses: PCI NICs, virtio (net, blk, rng), xHCI with a USB keyboard and a USB
 * disk, Intel HDA with a codec, a watchdog. Disk images are made in `dir`.
 */
export function standardDevices(dir: string): string[] {
  for (const img of ['vda.img', 'usb.img']) writeFileSync(join(dir, img), Buffer.alloc(8 << 20));
  return [
    '-audiodev', 'none,id=snd0',
    '-device', 'e1000',
    '-device', 'virtio-net-pci',
    '-drive', `file=${join(dir, 'vda.img')},if=none,id=d0,format=raw`,
    '-device', 'virtio-blk-pci,drive=d0',
    '-device', 'virtio-rng-pci',
    '-device', 'qemu-xhci,id=xhci',
    '-device', 'usb-kbd,bus=xhci.0',
    '-drive', `file=${join(dir, 'usb.img')},if=none,id=u0,format=raw`,
    '-device', 'usb-storage,bus=xhci.0,drive=u0',
    '-device', 'intel-hda',
    '-device', 'hda-duplex,audiodev=snd0',
    '-device', 'i6300esb',
  ];
}

export interface VmOptions {
  dir: string; // working directory for sockets and the console file
  kernel: string;
  initrd: string;
  append: string;
  devices: string[]; // extra QEMU arguments
  accel: string;
  memoryMb: number;
}

async function waitForPath(path: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > until) throw new Error(`${path} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Line reader over a socket. */
class Lines {
  private buf = '';
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  constructor(sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl).replace(/\r$/, ''));
        this.buf = this.buf.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  async next(ms: number, what: string): Promise<string> {
    const until = Date.now() + ms;
    while (this.lines.length === 0) {
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.lines.shift()!;
  }
}

export class Vm {
  readonly proc: ChildProcess;
  readonly console: string;
  private consoleOffset = 0;
  private consoleRest = '';
  private cmd: { sock: Socket; lines: Lines } | undefined;
  private qmp: { sock: Socket; lines: Lines } | undefined;
  private qemuErr = '';
  readonly startedAt = Date.now();

  constructor(readonly o: VmOptions) {
    this.console = join(o.dir, 'console.log');
    const args = [
      '-machine', 'pc', '-accel', o.accel, '-cpu', o.accel === 'tcg' ? 'max' : 'host', '-m', String(o.memoryMb), '-smp', '2',
      '-nographic', '-no-reboot', '-monitor', 'none',
      '-kernel', o.kernel, '-initrd', o.initrd, '-append', o.append,
      '-serial', `file:${this.console}`,
      '-serial', `unix:${join(o.dir, 'cmd.sock')},server=on,wait=off`,
      '-qmp', `unix:${join(o.dir, 'qmp.sock')},server=on,wait=off`,
      ...o.devices,
    ];
    this.proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr!.on('data', (d: Buffer) => (this.qemuErr += d.toString()));
  }

  get stderr(): string {
    return this.qemuErr;
  }

  async connect(): Promise<void> {
    await waitForPath(join(this.o.dir, 'qmp.sock'), 20000);
    await waitForPath(join(this.o.dir, 'cmd.sock'), 20000);
    const q = await connectUnix(join(this.o.dir, 'qmp.sock'));
    this.qmp = { sock: q, lines: new Lines(q) };
    await this.qmp.lines.next(10000, 'QMP greeting');
    await this.qmpCall('qmp_capabilities', {});
    const c = await connectUnix(join(this.o.dir, 'cmd.sock'));
    this.cmd = { sock: c, lines: new Lines(c) };
  }

  async qmpCall(execute: string, args: object): Promise<Record<string, unknown>> {
    const q = this.qmp!;
    q.sock.write(JSON.stringify({ execute, arguments: args }) + '\n');
    for (;;) {
      const line = await q.lines.next(30000, `QMP ${execute}`);
      const msg = JSON.parse(line) as Record<string, unknown>;
      if ('return' in msg) return msg;
      if ('error' in msg) throw new Error(`QMP ${execute}: ${JSON.stringify(msg.error)}`);
      // events: ignore
    }
  }

  /** Wait for the guest's command loop (e2e/agent.sh). */
  async guestReady(ms: number): Promise<void> {
    for (;;) {
      const l = await this.cmd!.lines.next(ms, 'the guest command loop (@@READY)');
      if (l.includes('@@READY')) return;
    }
  }

  /** Run "dump" in the guest: /proc/modules and every MODALIAS. */
  async dump(): Promise<{ modules: string[]; modaliases: { devpath: string; modalias: string }[] }> {
    const c = this.cmd!;
    c.sock.write('dump\n');
    let section = '';
    const modules: string[] = [];
    const modaliases: { devpath: string; modalias: string }[] = [];
    for (;;) {
      const l = await c.lines.next(120000, 'the dump');
      if (l === '@@MODULES' || l === '@@MODALIASES') section = l;
      else if (l === '@@END') return { modules, modaliases };
      else if (section === '@@MODULES' && l.trim() !== '') modules.push(l.split(' ')[0]!);
      else if (section === '@@MODALIASES') {
        const m = /^\/sys(\/.*)\/uevent:MODALIAS=(.*)$/.exec(l);
        if (m) modaliases.push({ devpath: m[1]!, modalias: m[2]! });
      }
    }
  }

  /** Run a shell command in the guest ("run CMD" on the command channel): its output and exit status. */
  async run(command: string, ms = 60000): Promise<{ output: string[]; status: number }> {
    const c = this.cmd!;
    c.sock.write(`run ${command}\n`);
    const output: string[] = [];
    let started = false;
    for (;;) {
      const l = await c.lines.next(ms, `the guest command "${command}"`);
      if (l === '@@RUN') started = true;
      else if (started && l.startsWith('@@STATUS ')) return { output, status: Number(l.slice(9)) };
      else if (started) output.push(l);
    }
  }

  /** New complete console lines since the last call. */
  readConsole(): string[] {
    if (!existsSync(this.console)) return [];
    const size = statSync(this.console).size;
    if (size <= this.consoleOffset) return [];
    const fd = openSync(this.console, 'r');
    const buf = Buffer.alloc(size - this.consoleOffset);
    readSync(fd, buf, 0, buf.length, this.consoleOffset);
    closeSync(fd);
    this.consoleOffset = size;
    const text = this.consoleRest + buf.toString('latin1');
    const lines = text.split('\n');
    this.consoleRest = lines.pop()!;
    return lines.map((l) => l.replace(/\r$/, ''));
  }

  /** Ask the guest to power off; QEMU is killed when it has not exited within `ms`. */
  async poweroff(ms = 15000): Promise<void> {
    try {
      this.cmd?.sock.write('poweroff\n');
    } catch {
      // already gone
    }
    const exited = new Promise<void>((r) => (this.proc.exitCode !== null ? r() : this.proc.once('exit', () => r())));
    const t = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(t);
    this.cmd?.sock.destroy();
    this.qmp?.sock.destroy();
  }
}
