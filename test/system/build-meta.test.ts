/**
 * build-meta on a tree of real ELF objects with .modinfo sections, made by gcc
 * here, plain and compressed (gzip, xz, zstd).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { ModuleIndex } from '../../src/core/index/module-index.js';
import { decodeMeta } from '../../src/core/index/meta/read.js';
import { elfSection, readModinfo } from '../../src/core/index/elf.js';
import { scanModuleTree } from '../../src/sys/modtree.js';
import { type HotplugError } from '../../src/errors.js';

function fakeModule(dir: string, name: string, modinfo: string[]): Buffer {
  const src = join(dir, `${name}.c`);
  const body = modinfo.map((r) => `${JSON.stringify(r)} "\\0"`).join(' ');
  writeFileSync(src, `__attribute__((section(".modinfo"), used, aligned(1))) static const char modinfo[] = ${body};\n`);
  const obj = join(dir, `${name}.o`);
  execFileSync('gcc', ['-c', '-o', obj, src]);
  return readFileSync(obj);
}

function need(tool: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`]);
  } catch {
    throw new Error(`${tool} is not installed: this test needs it (CI installs it in .ci/run)`);
  }
}

describe('build-meta', () => {
  let tree: string;
  beforeAll(() => {
    for (const t of ['gcc', 'xz', 'zstd']) need(t);
    const work = mkdtempSync(join(tmpdir(), 'hotplugd-ko-'));
    tree = join(work, 'lib/modules/6.1.0-test');
    mkdirSync(join(tree, 'kernel/drivers'), { recursive: true });
    const nic = fakeModule(work, 'fake_nic', ['alias=pci:v00001234d0000ABCDsv*sd*bc*sc*i*', 'alias=pci:v00001234d0000[0-2]*sv*sd*bc02sc*i*', 'depends=fake-core,fake_phy', 'name=fake_nic']);
    const core = fakeModule(work, 'fake_core', ['name=fake_core', 'softdep=pre: fake-phy']);
    const phy = fakeModule(work, 'fake_phy', ['name=fake_phy', 'depends=fake_core', 'alias=mdio:0000*']);
    const usb = fakeModule(work, 'fake_usb', ['name=fake_usb', 'alias=usb:v1D6Bp0002d*dc*dsc*dp*ic*isc*ip*in*']);
    writeFileSync(join(tree, 'kernel/drivers/fake_nic.ko'), nic);
    writeFileSync(join(tree, 'kernel/drivers/fake_core.ko.gz'), gzipSync(core));
    writeFileSync(join(tree, 'kernel/drivers/fake_phy.ko'), phy);
    execFileSync('xz', ['-k', '-f', join(tree, 'kernel/drivers/fake_phy.ko')]);
    writeFileSync(join(tree, 'kernel/drivers/fake_usb.ko'), usb);
    execFileSync('zstd', ['-q', '-f', '--rm', join(tree, 'kernel/drivers/fake_usb.ko')]);
    execFileSync('rm', [join(tree, 'kernel/drivers/fake_phy.ko')]);
    writeFileSync(join(tree, 'kernel/drivers/truncated.ko'), nic.subarray(0, 200));
    writeFileSync(join(tree, 'modules.builtin.modinfo'), 'ext4.alias=fs-ext4\0ext4.license=GPL\0');
  });

  it('reads name, aliases, dependencies and softdeps from plain, gzip, xz and zstd modules', async () => {
    const { parts, skipped } = await scanModuleTree(tree);
    const index = new ModuleIndex(parts);
    expect(index.lookup('pci:v00001234d0000ABCDsv00000001sd00000002bc02sc00i00').names).toEqual(['fake_nic']);
    expect(index.lookup('pci:v00001234d00001FFFsv0sd0bc02sc00i00').names).toEqual(['fake_nic']);
    expect(index.lookup('pci:v00001234d00003FFFsv0sd0bc02sc00i00').names).toEqual([]);
    expect(index.lookup('mdio:00001111').names).toEqual(['fake_phy']);
    expect(index.lookup('usb:v1D6Bp0002d0100dc09dsc00dp03ic09isc00ip00in00').names).toEqual(['fake_usb']);
    expect(index.lookup('fs-ext4').names).toEqual(['ext4']);
    expect(index.moduleByName('fake_nic')?.deps.map((d) => index.modules[d]!.name)).toEqual(['fake_core', 'fake_phy']);
    expect(index.moduleByName('fake_core')?.path).toBe('kernel/drivers/fake_core.ko.gz');
    expect(index.softdeps('fake_core')).toEqual({ pre: ['fake-phy'], post: [] });
    expect(skipped.map((s) => s.file.slice(tree.length + 1))).toEqual(['kernel/drivers/truncated.ko']);
    expect(skipped[0]!.problem).toMatch(/truncated/);
  });

  it('writes a meta.pb through the CLI that decodes to the same index', () => {
    const out = join(tree, 'meta.pb');
    const stderr = execFileSync('node', ['dist/src/cli.js', 'build-meta', tree, '-o', out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    void stderr;
    const decoded = decodeMeta(readFileSync(out), out);
    expect(decoded.kernelRelease).toBe('6.1.0-test');
    const index = new ModuleIndex(decoded);
    expect(index.lookup('pci:v00001234d0000ABCDsv00000001sd00000002bc02sc00i00').names).toEqual(['fake_nic']);
    expect(index.lookup('fs-ext4').names).toEqual(['ext4']);
    // Only a built-in alias names ext4 (modules.builtin does not): built in when found by it, no module by its own name.
    expect(index.isBuiltin('ext4')).toBe(true);
    expect(index.lookup('ext4').names).toEqual([]);
  });
});

describe('ELF reader', () => {
  it('rejects what is not ELF or is cut short, with E_ELF', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as HotplugError).code;
      }
      return undefined;
    };
    expect(code(() => readModinfo(Buffer.from('#!/bin/sh\necho not a module\n'.repeat(4)), 'x.ko'))).toBe('E_ELF');
    const elf = Buffer.alloc(64);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
    elf.writeBigUInt64LE(1n << 40n, 0x28); // section headers far beyond the file
    elf.writeUInt16LE(64, 0x3a);
    elf.writeUInt16LE(10, 0x3c);
    elf.writeUInt16LE(1, 0x3e);
    expect(code(() => elfSection(elf, '.modinfo', 'x.ko'))).toBe('E_ELF');
  });
});
