/** The control protocol's pure parts: line splitting with its bound, request parsing, the rate limit. */
import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE, parseRequest, RateLimit } from '../../../src/control/protocol.js';

describe('LineSplitter', () => {
  it('returns whole lines across chunks and keeps the partial tail', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.from('{"cmd":"st'))).toEqual([]);
    expect(s.push(Buffer.from('atus"}\n{"cmd":"why"}\n{"c'))).toEqual(['{"cmd":"status"}', '{"cmd":"why"}']);
    expect(s.push(Buffer.from('md":"x"}\n'))).toEqual(['{"cmd":"x"}']);
    expect(s.overflow).toBe(false);
  });

  it('flags a line longer than 64 KiB and buffers nothing past the bound, even without a newline', () => {
    const s = new LineSplitter();
    expect(s.push(Buffer.alloc(MAX_LINE, 0x61))).toEqual([]);
    expect(s.overflow).toBe(false);
    s.push(Buffer.from('b'));
    expect(s.overflow).toBe(true);
    expect(s.push(Buffer.alloc(10 * MAX_LINE, 0x61))).toEqual([]);
  });

  it('holds a line dripped one byte per chunk in one buffer of at most twice the bound', () => {
    const s = new LineSplitter();
    let lines = 0;
    for (let i = 0; i < MAX_LINE - 1; i++) lines += s.push(Buffer.from('a')).length;
    expect(lines).toBe(0);
    expect(s.buffered).toBe(MAX_LINE - 1);
    expect(s.held).toBeGreaterThanOrEqual(MAX_LINE - 1);
    expect(s.held).toBeLessThanOrEqual(2 * MAX_LINE);
    const [line] = s.push(Buffer.from('b\nc'));
    expect(line).toBe(`${'a'.repeat(MAX_LINE - 1)}b`);
    expect(s.buffered).toBe(1);
    expect(s.held).toBeLessThanOrEqual(256); // the long line's buffer is released
  });

  it('accepts a line of exactly the bound', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcd\nabcde\n'))).toEqual(['abcd']);
    expect(s.overflow).toBe(true);
  });
});

describe('parseRequest', () => {
  it('takes one JSON object with a string cmd', () => {
    expect(parseRequest('{"cmd":"settle","timeout":3}')).toEqual({ cmd: 'settle', timeout: 3 });
  });

  it.each(['garbage', '[1,2]', '"status"', 'null', '{}', '{"cmd":5}', '{"cmd":""}'])('answers E_PROTOCOL to %s', (line) => {
    expect(parseRequest(line)).toMatchObject({ ok: false, code: 'E_PROTOCOL' });
  });
});

describe('RateLimit', () => {
  it('allows the burst, then refills at the rate', () => {
    let t = 0;
    const r = new RateLimit(10, 3, () => t);
    expect([r.take(), r.take(), r.take(), r.take()]).toEqual([true, true, true, false]);
    t += 100; // one token
    expect([r.take(), r.take()]).toEqual([true, false]);
  });
});
