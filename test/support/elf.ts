/**
 * Hand-made 64-bit little-endian ELF objects for the .modinfo reader: section
 * 0 is the string table, the given sections follow, their data laid out after
 * the section headers.
 */
export function buildElf(strtab: Buffer, sections: { name: number; data?: Buffer }[]): Buffer {
  const shoff = 64;
  const shnum = sections.length + 1;
  const dataOff = shoff + shnum * 64;
  const all = [{ name: 0, data: strtab }, ...sections.map((s) => ({ name: s.name, data: s.data ?? Buffer.alloc(0) }))];
  const elf = Buffer.alloc(dataOff + all.reduce((n, s) => n + s.data.length, 0));
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
  elf.writeBigUInt64LE(BigInt(shoff), 0x28);
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(shnum, 0x3c);
  elf.writeUInt16LE(0, 0x3e); // section 0 is the string table
  let at = dataOff;
  all.forEach((s, i) => {
    const h = shoff + i * 64;
    elf.writeUInt32LE(s.name, h);
    elf.writeBigUInt64LE(BigInt(at), h + 24);
    elf.writeBigUInt64LE(BigInt(s.data.length), h + 32);
    s.data.copy(elf, at);
    at += s.data.length;
  });
  return elf;
}
