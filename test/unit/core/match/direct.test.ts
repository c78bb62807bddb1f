import { describe, expect, it } from 'vitest';
import { ClassTable, compilePattern } from '../../../../src/core/glob.js';
import { TrieBuilder } from '../../../../src/core/match/builder.js';
import { DirectMatcher } from '../../../../src/core/match/direct.js';
import { Trie } from '../../../../src/core/match/trie.js';

function setup(patterns: string[]): { trie: Trie; direct: DirectMatcher; at: number } {
  const classes = new ClassTable();
  const b = new TrieBuilder();
  patterns.forEach((p, i) => b.insert(compilePattern(p, classes)!, i));
  const trie = new Trie(b.layout());
  let at = 0;
  for (const c of 'usb:') at = trie.literalChild(at, c.charCodeAt(0));
  return { trie, direct: new DirectMatcher(trie, classes), at };
}

describe('DirectMatcher', () => {
  it('matches the few wildcard parts at an injection point against the rest of the key', () => {
    const { direct, at } = setup(['usb:*p1*', 'usb:?Xp2', 'usb:[uv]*', 'usb:v*p1']);
    const hits: number[] = [];
    expect(direct.match(at, 'usb:vXp1', 4, hits)).toBe(true);
    expect(hits).toEqual([0, 2]); // not 'usb:v*p1': its wildcard part starts at 'usb:v'
  });

  it('hands a point over to the DFA cache once it is hot, and a crowded point at once', () => {
    const { direct, at } = setup(['usb:v*']);
    const hits: number[] = [];
    const answers = Array.from({ length: 6 }, () => direct.match(at, 'usb:v', 4, hits));
    expect(answers).toEqual([true, true, true, true, false, false]);
    direct.reset();
    expect(direct.match(at, 'usb:v', 4, hits)).toBe(true);
    const crowded = setup(Array.from({ length: 9 }, (_, i) => `usb:*${i}`));
    expect(crowded.direct.match(crowded.at, 'usb:1', 4, [])).toBe(false);
  });
});
