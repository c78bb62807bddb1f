import { describe, expect, it } from 'vitest';
import { forEachAlias, parseDepFile, parseSoftdepFile } from '../../../../src/core/index/depmod.js';

describe('depmod files', () => {
  it('skips malformed alias lines, keeps the rest, and says which file and line', () => {
    const warnings: { file: string; line: number; problem: string }[] = [];
    const seen: string[] = [];
    forEachAlias('# comment\nalias pci:v* ahci\ngarbage here\nalias only-two\nalias usb:v1* usb-storage\n', 'modules.alias', warnings, (p, m) =>
      seen.push(`${p} ${m}`),
    );
    expect(seen).toEqual(['pci:v* ahci', 'usb:v1* usb_storage']);
    expect(warnings.map((w) => w.line)).toEqual([3, 4]);
    expect(warnings[0]!.file).toBe('modules.alias');
  });

  it('reads modules.dep with dependencies in file order and rejects lines that are not module paths', () => {
    const warnings: { file: string; line: number; problem: string }[] = [];
    const deps = parseDepFile('kernel/a.ko: kernel/b.ko kernel/c.ko.xz\nkernel/b.ko:\nnot a module line\n', 'modules.dep', warnings);
    expect(deps).toEqual([
      { line: 1, name: 'a', path: 'kernel/a.ko', deps: ['kernel/b.ko', 'kernel/c.ko.xz'] },
      { line: 2, name: 'b', path: 'kernel/b.ko', deps: [] },
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.line).toBe(3);
  });

  it('splits modules.dep dependencies on tabs as well as spaces, as kmod_module_parse_depline', () => {
    const warnings: { file: string; line: number; problem: string }[] = [];
    expect(parseDepFile('kernel/a.ko:\tkernel/b.ko \t kernel/c.ko\n', 'modules.dep', warnings)[0]!.deps).toEqual(['kernel/b.ko', 'kernel/c.ko']);
    expect(warnings).toEqual([]);
  });

  it('reads softdeps, ignoring words before pre:/post: as kmod does', () => {
    const warnings: { file: string; line: number; problem: string }[] = [];
    const s = parseSoftdepFile('softdep ext4 pre: crypto-crc32c\nsoftdep cifs gcm\nsoftdep x\n', 'modules.softdep', warnings);
    expect(s.get('ext4')).toEqual({ pre: ['crypto-crc32c'], post: [] });
    expect(s.get('cifs')).toEqual({ pre: [], post: [] });
    expect(warnings.map((w) => w.line)).toEqual([3]);
  });
});
