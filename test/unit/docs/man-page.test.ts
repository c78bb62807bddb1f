/**
 * hotplugd(8) against the code: its title names this version, and its
 * ENVIRONMENT section every variable src/ reads.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MAN = readFileSync('man/hotplugd.8.md', 'utf8');
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('hotplugd(8)', () => {
  it('names this version and a date in its title line', () => {
    expect(MAN.split('\n')[0]).toMatch(new RegExp(`^hotplugd 8 "[A-Z][a-z]+ \\d{4}" "hotplugd ${VERSION.replace(/\./g, '\\.')}" "System Administration"$`));
  });

  it('describes in ENVIRONMENT every environment variable the code reads', () => {
    const env = MAN.slice(MAN.indexOf('\n# ENVIRONMENT\n'), MAN.indexOf('\n# FILES\n'));
    expect(env.length).toBeGreaterThan(20);
    const read = new Set<string>();
    for (const f of sources('src')) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\b(?:process\.)?env\.([A-Z][A-Z0-9_]+)/g)) read.add(m[1]!);
    }
    read.add('UV_THREADPOOL_SIZE'); // read by libuv itself, sized by the unit
    expect([...read].sort().filter((v) => !env.includes(`**${v}**`))).toEqual([]);
  });
});
