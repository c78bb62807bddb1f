/** The --jobs flag: its values, its bounds, auto, and that it reaches the queue's policy. */
import { describe, expect, it } from 'vitest';
import { parseJobs, queuePolicy } from '../../../src/commands/daemon-setup.js';
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

  it('makes auto 2 per CPU, at least 2 and at most 8', () => {
    expect([1, 2, 3, 4, 64].map((cpus) => parseJobs('auto', cpus))).toEqual([2, 4, 6, 8, 8]);
    expect(parseJobs('auto')).toBeGreaterThanOrEqual(2);
    expect(parseJobs('auto')).toBeLessThanOrEqual(8);
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
