/**
 * What `why` and `match --json` say about the configuration behind an
 * answer: each blacklist, options, softdep and install line, with its file
 * and line or the kernel command line.
 */
import { describe, expect, it } from 'vitest';
import { emptyConfig, parseCmdline, parseModprobeConf } from '../../../src/core/config.js';
import { configuredBy } from '../../../src/core/explain.js';
import { indexFromDepmod } from '../../../src/core/index/from-depmod.js';
import { ModuleIndex } from '../../../src/core/index/module-index.js';

function index(conf: string, cmdline: string): ModuleIndex {
  const cfg = emptyConfig();
  parseCmdline(cmdline, cfg);
  parseModprobeConf(conf, '/etc/modprobe.d/a.conf', cfg);
  const parts = indexFromDepmod({
    dir: '/lib/modules/test',
    dep: 'kernel/a.ko: kernel/b.ko\nkernel/b.ko:\nkernel/c.ko:\n',
    alias: 'alias pci:v1d* a\nalias platform:c c\n',
    builtin: '',
  });
  return new ModuleIndex(parts, cfg);
}

describe('configuredBy', () => {
  it('names the file and line (or the kernel command line) of each blacklist, options, softdep and install line behind an answer', () => {
    const idx = index(['# a comment', 'blacklist a', 'options a x=1', 'options pci:v1d2 viaalias=1', 'options pci:v1d* notapplied=1', 'options c y=1', 'softdep a pre: c', 'install b /bin/true', ''].join('\n'), 'a.z=2 modprobe.blacklist=a');
    const lines = configuredBy(idx, 'a', 'pci:v1d2', ['b']).map((e) => `${e.line > 0 ? `${e.file}:${e.line}` : e.file}: ${e.kind} ${e.name} ${e.value}`.trim());
    expect(lines).toEqual([
      '/etc/modprobe.d/a.conf:2: blacklist a',
      '/etc/modprobe.d/a.conf:3: options a x=1',
      '/etc/modprobe.d/a.conf:4: options pci:v1d2 viaalias=1',
      '/etc/modprobe.d/a.conf:7: softdep a pre: c',
      '/etc/modprobe.d/a.conf:8: install b /bin/true',
      'kernel command line: options a z=2',
      'kernel command line: blacklist a',
    ]);
    // As libkmod: options for an alias apply when the module was found by that very string (the query), not by a glob that matches it;
    // the options the index gives are the ones named.
    expect(idx.options('a', 'pci:v1d2')).toBe('x=1 viaalias=1 z=2');
    // Another module's lines are not its.
    expect(configuredBy(idx, 'c', 'platform:c', []).map((e) => e.line)).toEqual([6]);
  });
});
