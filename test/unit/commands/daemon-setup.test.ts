/** The --jobs flag: its values, its bounds, auto, and that it reaches the queue's policy. */
import { describe, expect, it } from 'vitest';
import { parseJobs, queuePolicy, threadPoolSize } from '../../../src/commands/daemon-setup.js';
import { HotplugError } from '../../../src/errors.js';
import { MAX_JOBS } from '../../../src/core/queue.js';

describe('--jobs', () => {
  it('defaults to one load at a time', () => {
    expect(parseJobs(undefined)).toBe(1);
    expect(queuePolicy({}).jobs).toBe(1);
  });

  it('takes a whole number from 1 to the maximum', () => {
    expect(parseJobs('1')).toBe(1);
    expect(parseJobs('4')).toBe(4);
    expect(parseJobs(String(MAX_JOBS))).toBe(MAX_JOBS);
    expect(queuePolicy({ jobs: '8', 'install-commands': 'refuse' }).jobs).toBe(8);
  });

  it('makes auto 2 per CPU, at least 2 and at most 8, when the thread pool is large enough', () => {
    expect([1, 2, 3, 4, 64].map((cpus) => parseJobs('auto', cpus, 16))).toEqual([2, 4, 6, 8, 8]);
  });

  it('keeps auto below the size of the thread pool that runs the loads (libuv: 4 by default)', () => {
    expect([1, 2, 4].map((cpus) => parseJobs('auto', cpus, 4))).toEqual([2, 3, 3]);
    expect(parseJobs('auto', 8, 2)).toBe(1);
    expect(parseJobs('auto', 8, 1)).toBe(1);
    expect(parseJobs('auto')).toBeGreaterThanOrEqual(1);
    expect(parseJobs('auto')).toBeLessThanOrEqual(8);
    // An explicit N is taken as given.
    expect(parseJobs('8', 1, 4)).toBe(8);
  });

  it('reads UV_THREADPOOL_SIZE as libuv does', () => {
    expect([undefined, '8', ' 16', '0', 'x', '', '2000', '-1'].map((v) => threadPoolSize(v === undefined ? {} : { UV_THREADPOOL_SIZE: v }))).toEqual([
      4, 8, 16, 1, 1, 1, 1024, 1024,
    ]);
  });

  for (const bad of ['0', '-1', String(MAX_JOBS + 1), '1.5', '1e3', '', ' 2', 'all', '99999999999999999999']) {
    it(`refuses --jobs "${bad}" as a usage error naming the flag`, () => {
      let err: unknown;
      try {
        parseJobs(bad);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HotplugError);
      expect(err).toMatchObject({ code: 'E_USAGE', message: expect.stringContaining('--jobs') });
    });
  }
});
