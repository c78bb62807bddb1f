/**
 * Which names are built in, as libkmod decides (kmod 30, libkmod.c): a name
 * is a built-in module only when modules.builtin lists it
 * (kmod_lookup_alias_from_builtin_file, kmod_lookup_alias_is_builtin);
 * modules.builtin.modinfo also carries the parameters of built-in code that
 * is no module (apparmor, random, printk, ...), and only its `alias=` entries
 * count (depmod's modules.builtin.alias.bin): a module they name is built in
 * when found by that alias (kmod_lookup_alias_from_kernel_builtin_file),
 * never by its own name. The same answers from depmod's files, from a
 * meta.pb and from the index cache's layout; the kernel command line's
 * options for such a name change nothing.
 */
import { describe, expect, it } from 'vitest';
import { emptyConfig, parseCmdline } from '../../../../src/core/config.js';
import { describe as explain } from '../../../../src/core/explain.js';
import { indexFromDepmod } from '../../../../src/core/index/from-depmod.js';
import { decodeMeta } from '../../../../src/core/index/meta/read.js';
import { encodeMeta } from '../../../../src/core/index/meta/write.js';
import { type IndexParts, ModuleIndex } from '../../../../src/core/index/module-index.js';
import { loadOrder } from '../../../../src/core/plan.js';

/** A tree shaped like Debian 6.1's: ext4 loadable, crc32c built in (alias crypto-crc32c), apparmor/random parameters only, debugfs an alias only. */
function parts(): IndexParts {
  return indexFromDepmod({
    dir: '/lib/modules/test',
    dep: 'kernel/fs/ext4/ext4.ko:\nkernel/drivers/input/misc/pcspkr.ko:\n',
    alias: 'alias fs-ext4 ext4\nalias platform:pcspkr pcspkr\n',
    builtin: 'kernel/crypto/crc32c_generic.ko\n',
    builtinModinfo: [
      'crc32c_generic.alias=crypto-crc32c',
      'crc32c_generic.license=GPL',
      'apparmor.parmtype=enabled:bool',
      'apparmor.parm=enabled:Enable/Disable Apparmor on boot',
      'random.parmtype=trust_cpu:bool',
      'printk.parmtype=time:bool',
      'debugfs.alias=fs-debugfs',
      'debugfs.parmtype=allow:uint',
      '',
    ].join('\0'),
    softdep: 'softdep pcspkr pre: apparmor random crypto-crc32c post: fs-debugfs debugfs\n',
  });
}

function answers(index: ModuleIndex): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const q of ['apparmor', 'random', 'printk', 'debugfs', 'fs-debugfs', 'crc32c_generic', 'crypto-crc32c', 'ext4', 'fs-ext4']) {
    const r = index.lookup(q);
    out[q] = `${r.source}:${r.names.join(',')}`;
  }
  out.pcspkr = loadOrder(index, 'pcspkr').map((s) => `${s.name}${s.builtin ? '(builtin)' : ''}`);
  return out;
}

const EXPECTED = {
  // modprobe -R: FATAL: Module apparmor not found (exit 1)
  apparmor: 'none:',
  random: 'none:',
  printk: 'none:',
  debugfs: 'none:',
  // modprobe -R fs-debugfs: debugfs; --show-depends: "builtin debugfs"
  'fs-debugfs': 'builtin-alias:debugfs',
  crc32c_generic: 'builtin-name:crc32c_generic',
  'crypto-crc32c': 'builtin-alias:crc32c_generic',
  ext4: 'name:ext4',
  'fs-ext4': 'alias:ext4',
  // modprobe --show-depends pcspkr with that softdep: builtin crc32c_generic, insmod pcspkr, builtin debugfs
  pcspkr: ['crc32c_generic(builtin)', 'pcspkr', 'debugfs(builtin)'],
};

describe('built-in names (modules.builtin) and parameter-only names (modules.builtin.modinfo)', () => {
  it('answers as modprobe -R and --show-depends from depmod files', () => {
    const index = new ModuleIndex(parts());
    expect(answers(index)).toEqual(EXPECTED);
    expect(index.moduleByName('apparmor')).toBeUndefined();
    expect(index.isBuiltin('debugfs')).toBe(true);
    expect(index.isBuiltin('crc32c_generic')).toBe(true);
    expect(index.isBuiltin('ext4')).toBe(false);
    expect(index.isBuiltin('apparmor')).toBe(false);
    expect(explain(index, 'fs-debugfs')).toMatchObject({ source: 'builtin-alias', modules: [{ name: 'debugfs', builtin: true, loadOrder: ['debugfs'] }] });
    expect(explain(index, 'apparmor')).toEqual({ modalias: 'apparmor', source: 'none', modules: [] });
    expect(index.stats()).toMatchObject({ modules: 4, loadable: 2, builtin: 2 });
  });

  it('answers the same from a meta.pb and from the index cache layout', async () => {
    for (const [opts, own] of [[{}, false], [{ radix: false, moduleTable: true }, true]] as const) {
      const decoded = decodeMeta(await encodeMeta(parts(), 'test', undefined, opts), 'meta.pb', undefined, own);
      expect(answers(new ModuleIndex(decoded))).toEqual(EXPECTED);
    }
  });

  it('lets random.trust_cpu=1 on the kernel command line change no answer', () => {
    const cfg = emptyConfig();
    parseCmdline('BOOT_IMAGE=/vmlinuz random.trust_cpu=1 apparmor.enabled=0 debugfs.allow=0 quiet', cfg);
    const withCmdline = new ModuleIndex(parts(), cfg);
    expect(answers(withCmdline)).toEqual(EXPECTED);
    for (const q of ['random', 'apparmor', 'platform:pcspkr', 'fs-ext4']) expect(explain(withCmdline, q)).toEqual(explain(new ModuleIndex(parts()), q));
  });
});
