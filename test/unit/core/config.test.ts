import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyConfig, parseModprobeConf } from '../../../src/core/config.js';
import { loadIndex } from '../../../src/sys/indexfs.js';

function tempTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('an index from depmod files', () => {
  it('loads an index whose files have bad lines, reporting them and answering from the rest', () => {
    const dir = tempTree({
      'modules.dep': 'kernel/drivers/net/e1000.ko:\nthis is not valid\n',
      'modules.alias': 'alias pci:v00008086d0000100Esv*sd*bc*sc*i* e1000\nalias broken\n',
    });
    const index = loadIndex({ modulesDir: dir, configDirs: [], cmdline: '' });
    expect(index.lookup('pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00').names).toEqual(['e1000']);
    expect(index.warnings.map((w) => `${w.file.slice(dir.length + 1)}:${w.line}`)).toEqual(['modules.dep:2', 'modules.alias:2']);
  });

  it('skips a modules.dep line whose path or dependency has a .. component, with one warning, and keeps the rest', () => {
    const dir = tempTree({
      'modules.dep': '../../../tmp/evil.ko:\nkernel/a.ko: kernel/../../x.ko\nkernel/b.ko:\n',
      'modules.alias': 'alias dev:b b\n',
    });
    const index = loadIndex({ modulesDir: dir, configDirs: [], cmdline: '' });
    expect(index.moduleByName('evil')).toBeUndefined();
    expect(index.moduleByName('a')).toBeUndefined();
    expect(index.lookup('dev:b').names).toEqual(['b']);
    expect(index.warnings.map((w) => [w.line, w.problem])).toEqual([
      [1, 'module path has a ".." component; module evil skipped'],
      [2, 'module path has a ".." component; module a skipped'],
    ]);
  });

  it('keeps absolute modules.dep paths (depmod.d external directories) as libkmod does', () => {
    const dir = tempTree({ 'modules.dep': '/lib/modules/external/mod-simple.ko:\n', 'modules.alias': '' });
    const index = loadIndex({ modulesDir: dir, configDirs: [], cmdline: '' });
    expect(index.moduleByName('mod_simple')?.path).toBe('/lib/modules/external/mod-simple.ko');
    expect(index.warnings).toEqual([]);
  });

  it('names the directory and the flag when the index is missing', () => {
    expect(() => loadIndex({ modulesDir: '/nonexistent/modules', configDirs: [], cmdline: '' })).toThrow(
      /\/nonexistent\/modules: no such module directory; pass --modules-dir or --meta/,
    );
  });
});

describe('modprobe.d', () => {
  it('reads alias, blacklist, options, softdep and install/remove lines, and reports the rest', () => {
    const cfg = emptyConfig();
    parseModprobeConf(
      [
        '# comment',
        'alias my-nic e1000',
        'blacklist pcspkr',
        'options snd-hda-intel model=auto \\',
        'power_save=1',
        'softdep e1000 pre: crc32c post: ptp',
        'install foo /bin/true',
        'bogus line',
        'alias unbalanced] x',
      ].join('\n'),
      '/etc/modprobe.d/test.conf',
      cfg,
    );
    expect(cfg.aliases).toEqual([{ pattern: 'my_nic', module: 'e1000' }]);
    expect([...cfg.blacklist]).toEqual(['pcspkr']);
    expect(cfg.options.get('snd_hda_intel')).toEqual(['model=auto power_save=1']);
    expect(cfg.softdeps.get('e1000')).toEqual({ pre: ['crc32c'], post: ['ptp'] });
    expect(cfg.commands.get('foo')).toEqual({ install: '/bin/true' });
    expect(cfg.warnings.map((w) => w.line)).toEqual([8, 9]); // install lines are used now: no warning
  });

  it('uses modprobe.d aliases before modules.alias and matches them with fnmatch on the whole pattern', () => {
    const dir = tempTree({
      'modules.dep': 'kernel/a.ko:\nkernel/b.ko:\n',
      'modules.alias': 'alias dev:x* a\n',
      'conf/x.conf': 'alias dev:x1* b\n',
    });
    const index = loadIndex({ modulesDir: dir, configDirs: [join(dir, 'conf')], cmdline: '' });
    expect(index.lookup('dev:x1').names).toEqual(['b']);
    expect(index.lookup('dev:x2').names).toEqual(['a']);
  });

  it('lets a file in an earlier directory hide the same name in a later one', () => {
    const dir = tempTree({ 'etc/a.conf': 'blacklist one\n', 'lib/a.conf': 'blacklist two\n', 'lib/b.conf': 'blacklist three\n' });
    const index = loadIndex({
      modulesDir: tempTree({ 'modules.dep': '', 'modules.alias': '' }),
      configDirs: [join(dir, 'etc'), join(dir, 'lib')],
      cmdline: '',
    });
    expect(['one', 'two', 'three'].map((m) => index.isBlacklisted(m))).toEqual([true, false, true]);
  });
});

