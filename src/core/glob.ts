/**
 * Alias patterns as libkmod sees them.
 *
 * Strings here are byte strings: one JS char per byte (files and uevents are
 * read as latin1), so a character code is always 0..255.
 *
 * libkmod's contract, reproduced exactly:
 * - `alias_normalize` maps `-` to `_` outside `[...]`, rejects a `]` outside
 *   brackets and a `[` that is never closed (the alias is then unusable).
 * - The index trie compares the part of a pattern before its first `*`, `?` or
 *   `[` byte for byte (a `\` there is an ordinary byte); the rest, from that
 *   wildcard on, is handed to glibc `fnmatch(pattern, key, 0)`.
 *
 * `compilePattern` turns that into a token sequence that the trie matcher can
 * walk: every token consumes exactly one byte except STAR, which consumes any
 * run. Brackets become byte sets, decided once here with glibc's own rules, so
 * the matcher never has to reinterpret pattern syntax.
 */

/** A byte set, 256 bits as 8 words. */
export type ByteSet = Uint32Array;

export const TOKEN_ANY = 256;
export const TOKEN_STAR = 257;
/** Tokens >= TOKEN_CLASS are byte classes: TOKEN_CLASS + index into a ClassTable. */
export const TOKEN_CLASS = 258;

/** `-` and `_`: the kernel and kmod treat them as the same character in module names and aliases. */
export const DASH = 0x2d;
export const UNDERSCORE = 0x5f;

/** Every `-` to `_`, as the kernel and kmod name modules (and alias_normalize outside brackets). */
export function underscores(name: string): string {
  return name.indexOf('-') < 0 ? name : name.replace(/-/g, '_');
}

/** libkmod's alias_normalize; null where libkmod answers -EINVAL. */
export function normalizeAlias(alias: string): string | null {
  if (alias.indexOf('[') < 0) {
    if (alias.indexOf(']') >= 0) return null;
    return underscores(alias);
  }
  let out = '';
  const n = alias.length;
  for (let i = 0; i < n; i++) {
    const c = alias.charCodeAt(i);
    if (c === DASH) {
      out += '_';
    } else if (c === 0x5d /* ] */) {
      return null;
    } else if (c === 0x5b /* [ */) {
      const close = alias.indexOf(']', i);
      if (close < 0) return null;
      out += alias.slice(i, close + 1);
      i = close;
    } else {
      out += alias[i];
    }
  }
  return out;
}

export function newByteSet(): ByteSet {
  return new Uint32Array(8);
}

export function setHas(s: ByteSet, c: number): boolean {
  return ((s[c >>> 5]! >>> (c & 31)) & 1) === 1;
}

function setAdd(s: ByteSet, c: number): void {
  s[c >>> 5]! |= 1 << (c & 31);
}

/** Deduplicating registry of the byte sets used by brackets. */
export class ClassTable {
  readonly sets: ByteSet[] = [];
  private readonly ids = new Map<string, number>();

  intern(s: ByteSet): number {
    const key = s.join(',');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(s);
      this.ids.set(key, id);
    }
    return id;
  }
}

const CLASS_TESTS: Record<string, (c: number) => boolean> = {
  alpha: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  digit: (c) => c >= 48 && c <= 57,
  alnum: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57),
  upper: (c) => c >= 65 && c <= 90,
  lower: (c) => c >= 97 && c <= 122,
  space: (c) => c === 32 || (c >= 9 && c <= 13),
  blank: (c) => c === 32 || c === 9,
  xdigit: (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102),
  punct: (c) => c > 32 && c < 127 && !((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57)),
  print: (c) => c >= 32 && c < 127,
  graph: (c) => c > 32 && c < 127,
  cntrl: (c) => c < 32 || c === 127,
};

const NEVER = Symbol('never');
/** glibc's limit on a [:name:] class name. */
const CHAR_CLASS_MAX_LENGTH = 256;

/**
 * Parse the bracket expression whose `[` is at `start` (glibc fnmatch rules,
 * C locale, flags 0). Returns the byte set a matching byte must be in and the
 * index just after the bracket. An unterminated bracket makes glibc (2.36, as
 * measured here) match a literal `[` and re-read the pattern right after it.
 *
 * Not reproduced: glibc's quirks for ill-formed `[=`/`[.` members and for
 * brackets whose "skip the rest after a match" scan ends elsewhere than the
 * member scan. libkmod's alias_normalize rejects most such patterns, and no
 * kernel alias uses them; the property test covers the well-formed syntax.
 */
function parseBracket(p: string, start: number): { set: ByteSet; next: number } | typeof NEVER {
  const members = newByteSet();
  let i = start + 1;
  let negate = false;
  const ch = (k: number): number => (k < p.length ? p.charCodeAt(k) : 0);
  if (ch(i) === 0x21 /* ! */ || ch(i) === 0x5e /* ^ */) {
    negate = true;
    i++;
  }
  let c = ch(i++);
  for (;;) {
    let cold: number;
    if (c === 0x5c /* \ */) {
      if (i >= p.length) return NEVER;
      c = ch(i++);
      cold = c;
    } else if (c === 0x5b /* [ */ && ch(i) === 0x3a /* : */) {
      // [:name:] — glibc accepts only a-y in a name; any other byte makes the
      // `[` an ordinary member and parsing resumes at the `:`.
      let k = i + 1;
      while (k < p.length && ch(k) >= 0x61 && ch(k) < 0x7a && k - i <= CHAR_CLASS_MAX_LENGTH) k++;
      if (k - i - 1 >= CHAR_CLASS_MAX_LENGTH) return NEVER;
      if (ch(k) === 0x3a && ch(k + 1) === 0x5d) {
        const test = CLASS_TESTS[p.slice(i + 1, k)];
        if (!test) return NEVER; // unknown class: glibc fails the whole match
        for (let b = 0; b < 256; b++) if (test(b)) setAdd(members, b);
        i = k + 2;
        c = ch(i++);
        if (c === 0x5d /* ] */) break;
        if (c === 0) return unterminated(start);
        continue;
      }
      cold = c;
    } else if (c === 0x5b /* [ */ && (ch(i) === 0x3d || ch(i) === 0x2e) /* = . */) {
      // [=x=] and [.x.]: in the C locale only a single byte x is meaningful.
      const mark = ch(i);
      if (ch(i + 2) === mark && ch(i + 3) === 0x5d && i + 1 < p.length) {
        cold = ch(i + 1);
        i += 4;
      } else {
        cold = c;
      }
    } else if (c === 0) {
      return unterminated(start);
    } else {
      cold = c;
    }
    c = ch(i++);
    if (c === 0x2d /* - */ && ch(i) !== 0x5d) {
      let cend = ch(i++);
      if (cend === 0x5c) cend = ch(i++);
      if (cend === 0) return NEVER;
      for (let b = cold; b <= cend; b++) setAdd(members, b);
      c = ch(i++);
    } else {
      setAdd(members, cold);
    }
    if (c === 0x5d /* ] */) break;
  }
  if (negate) {
    for (let w = 0; w < 8; w++) members[w] = ~members[w]! >>> 0;
    // fnmatch never matches the end of the string with a bracket; NUL cannot
    // occur inside a C string, so excluding it changes nothing observable.
  }
  return { set: members, next: i };
}

function unterminated(start: number): { set: ByteSet; next: number } {
  const set = newByteSet();
  setAdd(set, 0x5b);
  return { set, next: start + 1 };
}

/**
 * Compile a normalized alias into tokens (see the file comment), returned as a
 * string with one char per token (char code = token); with literalPrefix
 * false, the whole pattern is fnmatch syntax. Returns null for a pattern that
 * can never match (glibc answers FNM_NOMATCH for every key, e.g. a trailing
 * `\`).
 */
export function compilePattern(pattern: string, classes: ClassTable, literalPrefix = true): string | null {
  const n = pattern.length;
  let i = 0;
  // Literal prefix: compared byte for byte by libkmod's trie walk. modprobe.d
  // `alias` lines go to fnmatch whole (literalPrefix = false).
  if (literalPrefix) {
    i = pattern.search(WILDCARD);
    if (i < 0) return pattern;
  }
  let tokens = pattern.slice(0, i);
  // Common case: only `*` and `?` from here on.
  const rest = pattern.slice(i);
  if (!SLOW_SYNTAX.test(rest)) return tokens + rest.replace(STAR_OR_ANY, (c) => (c === '*' ? STAR_CHAR : ANY_CHAR));
  while (i < n) {
    const c = pattern.charCodeAt(i);
    if (c === 0x2a /* * */) {
      tokens += STAR_CHAR;
      i++;
    } else if (c === 0x3f /* ? */) {
      tokens += ANY_CHAR;
      i++;
    } else if (c === 0x5b /* [ */) {
      const r = parseBracket(pattern, i);
      if (r === NEVER) return null;
      tokens += String.fromCharCode(TOKEN_CLASS + classes.intern(r.set));
      i = r.next;
    } else if (c === 0x5c /* \ */) {
      if (i + 1 >= n) return null;
      tokens += pattern[i + 1];
      i += 2;
    } else {
      tokens += pattern[i];
      i++;
    }
  }
  return tokens;
}

const WILDCARD = /[*?[]/;
const SLOW_SYNTAX = /[[\\]/;
const STAR_OR_ANY = /[*?]/g;
const STAR_CHAR = String.fromCharCode(TOKEN_STAR);
const ANY_CHAR = String.fromCharCode(TOKEN_ANY);

/**
 * The longest modalias or alias pattern hotplugd considers, in bytes:
 * PATH_MAX - 1, the most libkmod itself reads of a query (alias_normalize
 * copies at most that much into its PATH_MAX buffer and silently drops the
 * rest). The kernel never produces more: a uevent's whole environment fits in
 * 2048 bytes (UEVENT_BUFFER_SIZE), a sysfs `modalias` attribute in one page
 * (4096 bytes with its newline), and MODULE_ALIAS strings are short .modinfo
 * entries. So every query up to this length is answered exactly as libkmod
 * answers it; a longer query matches nothing (ModuleIndex.lookup answers
 * 'too-long', where libkmod would match a truncated copy), and a longer
 * pattern is skipped with a warning. This bounds what any input can make a
 * lookup or an index build cost.
 */
export const MAX_ALIAS_BYTES = 4095;

/**
 * Does a compiled token sequence match all of `key`? Every token but STAR
 * consumes exactly one byte, so the classic greedy algorithm is exact: on a
 * mismatch, return to the last STAR and let it swallow one more byte (an
 * earlier STAR never needs to take more, since the last one can absorb it).
 * Constant memory, at worst O(tokens x key) steps, no recursion.
 */
export function tokensMatch(tokens: string, key: string, classes: ClassTable): boolean {
  const n = tokens.length;
  let t = 0;
  let k = 0;
  let starT = -1;
  let starK = 0;
  while (k < key.length) {
    const tok = t < n ? tokens.charCodeAt(t) : -1;
    if (tok === TOKEN_STAR) {
      starT = t++;
      starK = k;
      continue;
    }
    if (tok >= 0) {
      const c = key.charCodeAt(k);
      if (tok === c || tok === TOKEN_ANY || (tok >= TOKEN_CLASS && setHas(classes.sets[tok - TOKEN_CLASS]!, c))) {
        t++;
        k++;
        continue;
      }
    }
    if (starT < 0) return false;
    t = starT + 1;
    k = ++starK;
  }
  while (t < n && tokens.charCodeAt(t) === TOKEN_STAR) t++;
  return t === n;
}
