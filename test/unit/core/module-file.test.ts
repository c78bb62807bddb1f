import { describe, expect, it } from 'vitest';
import { compressionOf, moduleNameFromPath } from '../../../src/core/module-file.js';

describe('module file names', () => {
  it('names a module by its file name without .ko, .ko.gz, .ko.xz or .ko.zst, with - as _', () => {
    expect(['kernel/a-b.ko', 'x/a_b.ko.gz', '/abs/a-b.ko.xz', 'a-b.ko.zst'].map(moduleNameFromPath)).toEqual(['a_b', 'a_b', 'a_b', 'a_b']);
  });

  it('refuses names that are not module files, or have nothing before the suffix', () => {
    expect(['a.ko.bz2', 'a.o', 'kernel/.ko', '.ko.gz', 'a.kox', 'dir.ko/'].map(moduleNameFromPath)).toEqual([null, null, null, null, null, null]);
  });

  it('tells the compression from the same suffixes', () => {
    expect(['a.ko', 'a.ko.gz', 'a.ko.xz', 'a.ko.zst', 'a.gz'].map(compressionOf)).toEqual([null, 'gzip', 'xz', 'zstd', null]);
  });
});
