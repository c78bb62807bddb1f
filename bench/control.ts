/**
 * The cost of a control-socket `status` call, against a running daemon:
 * 1,000 requests on one connection, one at a time (the request alone: the
 * daemon's work plus one round trip), then `hotplugd status` as a process
 * 20 times (what a script or a probe pays), beside `node -e 0` (the runtime
 * alone). Usage: node dist/bench/control.js SOCKET
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';

const sock = process.argv[2];
if (sock === undefined) {
  process.stderr.write('usage: node dist/bench/control.js SOCKET\n');
  process.exit(100);
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

const s = connect(sock);
await new Promise((r) => s.once('connect', r));
let buf = '';
let replies = 0;
let lastReply = '';
let wake: (() => void) | undefined;
s.on('data', (d: Buffer) => {
  buf += d.toString();
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    lastReply = buf.slice(0, i);
    buf = buf.slice(i + 1);
    replies++;
  }
  wake?.();
});
const ask = (): Promise<void> =>
  new Promise((resolve) => {
    const n = replies + 1;
    wake = () => {
      if (replies >= n) resolve();
    };
    s.write('{"cmd":"status"}\n');
  });
for (let i = 0; i < 100; i++) await ask(); // warm-up
const lat: number[] = [];
const t0 = performance.now();
for (let i = 0; i < 1000; i++) {
  const a = performance.now();
  await ask();
  lat.push(performance.now() - a);
}
const total = performance.now() - t0;
s.destroy();
if (!lastReply.startsWith('{"ok":true')) throw new Error(`status failed: ${lastReply}`);
const us = (ms: number): string => `${Math.round(ms * 1000)} µs`;
console.log(`status request, 1000 on one connection: ${total.toFixed(1)} ms; median ${us(pct(lat, 0.5))}, p99 ${us(pct(lat, 0.99))}; reply ${lastReply.length} bytes`);

const timed = (args: string[], n: number): number[] =>
  Array.from({ length: n }, () => {
    const a = performance.now();
    const r = spawnSync(process.execPath, args);
    if (r.status !== 0) throw new Error(`${args.join(' ')}: exit ${r.status}`);
    return performance.now() - a;
  });
const cli = timed(['dist/src/cli.js', 'status', '--control', sock], 20);
const node = timed(['-e', '0'], 10);
console.log(`hotplugd status as a process, 20 runs: median ${pct(cli, 0.5).toFixed(0)} ms (min ${Math.min(...cli).toFixed(0)}, max ${Math.max(...cli).toFixed(0)}); node -e 0: median ${pct(node, 0.5).toFixed(0)} ms`);
