/**
 * Alias patterns -> a matcher (the trie builder's front end), for every index
 * source that has patterns as text: modules.alias, modules.symbols, built-in
 * aliases, a .ko tree's modinfo. Patterns are normalized as libkmod's
 * alias_normalize does; the ones libkmod refuses are reported, not inserted.
 */
import { type ClassTable, compilePattern, DASH, MAX_ALIAS_BYTES, normalizeAlias, TOKEN_ANY, TOKEN_STAR, UNDERSCORE } from '../glob.js';
import { TrieBuilder } from '../match/index.js';
import { type LineWarning } from './depmod.js';
import { type CompiledAliases } from './module-index.js';

const STAR_CODE = TOKEN_STAR;
const WILD = /[*?]/;

function growPath(a: Uint32Array, min: number): Uint32Array {
  const b = new Uint32Array(Math.max(min, a.length * 2));
  b.set(a);
  return b;
}
const ANY_CODE = TOKEN_ANY;

/**
 * Alias patterns → a matcher. Patterns libkmod would refuse (unmatched
 * bracket) are reported; patterns longer than MAX_ALIAS_BYTES are skipped,
 * with one warning per compiler. Patterns without brackets or backslashes, nearly all
 * of them, are normalized and inserted byte by byte with no intermediate
 * string; the rest go through compilePattern.
 */
export class AliasCompiler {
  private readonly builder: TrieBuilder;
  private count = 0;
  private prevPattern = '';
  /** Trie node after each character of prevPattern (prevPath[0] is the root). */
  private prevPath: Uint32Array = new Uint32Array(256);
  private tooLong = 0;
  private firstTooLong = '';

  constructor(
    private readonly classes: ClassTable,
    private readonly file: string,
    private readonly warnings: LineWarning[],
    expectedBytes = 1024,
  ) {
    this.builder = new TrieBuilder(expectedBytes);
  }

  add(pattern: string, value: number): void {
    const b = this.builder;
    if (pattern.length > MAX_ALIAS_BYTES) {
      if (this.tooLong++ === 0) this.firstTooLong = `${JSON.stringify(pattern.slice(0, 32))}..., ${pattern.length} bytes`;
      return;
    }
    if (pattern.indexOf('[') < 0 && pattern.indexOf('\\') < 0) {
      if (pattern.indexOf(']') >= 0) {
        this.refused(pattern);
        return;
      }
      // Consecutive lines of modules.alias share long prefixes: resume from
      // the previous pattern's path instead of walking from the root. Tokens
      // map one to one to characters here, and a token depends only on its
      // prefix, so an equal prefix means equal tokens.
      const prev = this.prevPattern;
      const path = this.prevPath.length > pattern.length ? this.prevPath : (this.prevPath = growPath(this.prevPath, pattern.length + 1));
      let i = 0;
      const max = Math.min(prev.length, pattern.length);
      while (i < max && prev.charCodeAt(i) === pattern.charCodeAt(i)) i++;
      let node = path[i]!;
      let wild = pattern.search(WILD) < i && pattern.search(WILD) >= 0;
      for (; i < pattern.length; i++) {
        let c = pattern.charCodeAt(i);
        if (c === DASH) c = UNDERSCORE; // alias_normalize
        if (c === 0x2a || c === 0x3f) wild = true;
        node = b.child(node, wild && c === 0x2a ? STAR_CODE : wild && c === 0x3f ? ANY_CODE : c);
        path[i + 1] = node;
      }
      this.prevPattern = pattern;
      b.addValue(node, value);
      this.count++;
      return;
    }
    this.prevPattern = ''; // the slow path does not keep a path
    const norm = normalizeAlias(pattern);
    if (norm === null) {
      this.refused(pattern);
      return;
    }
    const tokens = compilePattern(norm, this.classes);
    if (tokens !== null) {
      b.insert(tokens, value);
      this.count++;
    }
  }

  finish(maxStates?: number): CompiledAliases {
    if (this.tooLong > 0) {
      this.warnings.push({
        file: this.file,
        line: 0,
        problem: `${this.tooLong} alias(es) longer than ${MAX_ALIAS_BYTES} bytes skipped (the first: ${this.firstTooLong}); no modalias is that long`,
      });
    }
    return { matcher: this.builder.finish(this.classes, maxStates), count: this.count };
  }

  private refused(pattern: string): void {
    this.warnings.push({ file: this.file, line: 0, problem: `alias "${pattern}" has an unmatched bracket (libkmod skips it too)` });
  }
}

/** Compile a list of alias lines (small sources: built-in aliases, tests). */
export function compileAliases(
  lines: readonly { pattern: string; module: string }[],
  moduleIndex: (name: string) => number,
  classes: ClassTable,
  file: string,
  warnings: LineWarning[],
  maxStates?: number,
): CompiledAliases {
  const c = new AliasCompiler(classes, file, warnings);
  for (const { pattern, module } of lines) c.add(pattern, moduleIndex(module));
  return c.finish(maxStates);
}
