#!/usr/bin/env node
// Generate the conformance query corpus from a module directory's aliases:
// an instance of every pattern (wildcards filled), a one-byte near miss of
// each, module and built-in names, and odd inputs. Deterministic (seeded).
//   node make-corpus.mjs MODULE_DIR > corpus.txt
import { readFileSync } from 'node:fs';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: make-corpus.mjs MODULE_DIR');
  process.exit(100);
}
let seed = 0x2545f491;
const rand = (n) => {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed % n;
};
const pick = (s) => s[rand(s.length)];
const FILL = '0123456789ABCDEF0123456789abcdefXYZ:_-*,';

function instance(p) {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '*') {
      const n = rand(4) === 0 ? 0 : rand(8) + 1;
      for (let k = 0; k < n; k++) out += pick(FILL);
    } else if (c === '?') {
      out += pick(FILL);
    } else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close < 0) { out += c; continue; }
      const body = p.slice(i + 1, close);
      const members = [];
      const neg = body[0] === '!' || body[0] === '^';
      const b = neg ? body.slice(1) : body;
      for (let k = 0; k < b.length; k++) {
        if (b[k + 1] === '-' && k + 2 < b.length) {
          for (let x = b.charCodeAt(k); x <= b.charCodeAt(k + 2); x++) members.push(String.fromCharCode(x));
          k += 2;
        } else members.push(b[k]);
      }
      if (neg) {
        const others = [...FILL].filter((x) => !members.includes(x));
        out += others.length ? pick(others) : 'q';
      } else out += members.length ? pick(members) : 'q';
      i = close;
    } else if (c === '\\' && i + 1 < p.length) {
      out += p[++i];
    } else out += c;
  }
  return out;
}

function nearMiss(s) {
  if (s.length === 0) return 'x';
  const i = rand(s.length);
  switch (rand(3)) {
    case 0: { // substitute
      let c = pick(FILL);
      if (c === s[i]) c = c === 'Z' ? 'Y' : 'Z';
      return s.slice(0, i) + c + s.slice(i + 1);
    }
    case 1: return s.slice(0, i) + s.slice(i + 1); // delete
    default: return s.slice(0, i) + pick(FILL) + s.slice(i); // insert
  }
}

const queries = [];
const clean = (q) => q.replace(/[\t\n\r]/g, '');
const aliasText = readFileSync(`${dir}/modules.alias`, 'latin1');
const patterns = [];
for (const line of aliasText.split('\n')) {
  const m = /^alias (\S+) (\S+)$/.exec(line);
  if (m) patterns.push(m[1]);
}
for (const p of patterns) {
  const inst = instance(p);
  queries.push(inst, nearMiss(inst));
}
for (const line of readFileSync(`${dir}/modules.dep`, 'latin1').split('\n')) {
  const m = /([^/]+)\.ko(\.\w+)?:/.exec(line);
  if (m && rand(4) === 0) queries.push(m[1], m[1].replace(/_/g, '-'));
}
for (const line of readFileSync(`${dir}/modules.builtin`, 'latin1').split('\n')) {
  const m = /([^/]+)\.ko$/.exec(line);
  if (m) queries.push(m[1]);
}
try {
  const info = readFileSync(`${dir}/modules.builtin.modinfo`, 'latin1');
  for (const rec of info.split('\0')) {
    const m = /^([^.]+)\.alias=(.*)$/.exec(rec);
    if (m) queries.push(m[2], instance(m[2]));
  }
} catch {}
try {
  const syms = readFileSync(`${dir}/modules.symbols`, 'latin1').split('\n');
  for (let i = 0; i < syms.length; i += 97) {
    const m = /^alias (\S+) /.exec(syms[i]);
    if (m) queries.push(m[1], nearMiss(m[1]));
  }
} catch {}
try {
  for (const line of readFileSync(`${dir}/modules.softdep`, 'latin1').split('\n')) {
    for (const w of line.split(/\s+/).slice(2)) if (w && !w.endsWith(':')) queries.push(w);
  }
} catch {}
// Odd inputs.
queries.push('', ' ', '*', '?', '[', ']', '[]', '[a-z]', '\\', 'pci:', 'usb:', 'acpi*:', ':::::', '-_-_-', '!!@@##$$%%^^&&',
  'pci:v*', 'usb:v*p*d*', 'pci:v0000[8086]d*', 'virtio:d00000001v00001AF4]', 'pci[', 'x'.repeat(4000),
  'pci:v00008086' + 'd'.repeat(3000), 'é', 'pci:v00008086d0000100Esv*sd*bc02sc00i00é', 'usb-storage', 'usb_storage');
for (let i = 0; i < 200; i++) {
  let s = '';
  const n = rand(60);
  for (let k = 0; k < n; k++) s += String.fromCharCode(33 + rand(94));
  queries.push(s);
}
process.stdout.write(queries.map(clean).join('\n') + '\n');
