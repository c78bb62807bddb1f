/**
 * Direct matching for injection points where few patterns hang (typically one
 * device's entries): each wildcard part is tested against the rest of the key
 * with plain glob matching (backtracking to the last `*`, linear in practice),
 * which costs less than stepping, hashing and caching state sets no other key
 * will meet. A point met HOT_AFTER times since the last reset is left to the
 * DFA cache instead, where its states pay off.
 *
 * Promises: bounded memory (DIRECT_CACHE_MAX points kept); the answer for a
 * part equals what stepping its state sets would give.
 */
import { type ClassTable, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from '../glob.js';
import type { Trie } from './trie.js';

/** Injection points with at most this many patterns are matched directly... */
const DIRECT_MAX = 8;
/** ...until they have been met this many times since the last reset. */
const HOT_AFTER = 4;
/** Injection points whose direct-match parts are kept (and literal nodes whose accepted values are). */
export const DIRECT_CACHE_MAX = 2048;

interface WildPart {
  tokens: Uint32Array;
  value: number;
}

interface DirectParts {
  /** null: too many patterns here, always a group. */
  parts: WildPart[] | null;
  seen: number;
}

export class DirectMatcher {
  private direct = new Map<number, DirectParts>();

  constructor(
    private readonly trie: Trie,
    private readonly classes: ClassTable,
  ) {}

  /** Forget every point (with the DFA cache's reset). */
  reset(): void {
    this.direct = new Map();
  }

  /**
   * Appends to `hits` the values of the wildcard parts at injection point
   * `lit` that match key[from..]. Returns false, adding nothing, when the
   * caller should open a group instead: many patterns, or a hot point.
   */
  match(lit: number, key: string, from: number, hits: number[]): boolean {
    let d = this.direct.get(lit);
    if (d === undefined) {
      // Bounded like the DFA cache: a huge key set must not grow memory.
      if (this.direct.size >= DIRECT_CACHE_MAX) this.direct.clear();
      d = { parts: this.wildCount(lit, DIRECT_MAX) <= DIRECT_MAX ? this.wildParts(lit) : null, seen: 0 };
      this.direct.set(lit, d);
    }
    if (d.parts === null || ++d.seen > HOT_AFTER) return false;
    for (const part of d.parts) if (this.globAt(part.tokens, key, from)) hits.push(part.value);
    return true;
  }

  /** Patterns whose wildcard part starts at literal node `lit`, counted up to `limit` + 1. */
  private wildCount(lit: number, limit: number): number {
    const { edgeStart, edgeTarget } = this.trie;
    let count = 0;
    const stack: number[] = [];
    for (let e = this.trie.wildStart(lit); e < edgeStart[lit + 1]!; e++) stack.push(edgeTarget[e]!);
    while (stack.length > 0 && count <= limit) {
      const n = stack.pop()!;
      count += this.trie.valueCount(n);
      for (let e = edgeStart[n]!; e < edgeStart[n + 1]!; e++) stack.push(edgeTarget[e]!);
    }
    return count;
  }

  /** The wildcard parts hanging at a literal node, as token arrays with their values. */
  private wildParts(lit: number): WildPart[] {
    const found: WildPart[] = [];
    const values: number[] = [];
    this.trie.walkPaths(this.trie.edgesFrom(lit, this.trie.wildStart(lit)), (path, depth, node) => {
      values.length = 0;
      this.trie.appendValues(node, values);
      for (const value of values) found.push({ tokens: path.slice(0, depth), value });
    });
    return found;
  }

  /** Does the token sequence match key[from..] exactly? */
  private globAt(tokens: Uint32Array, key: string, from: number): boolean {
    const n = tokens.length;
    let p = 0;
    let k = from;
    let starP = -1;
    let starK = 0;
    while (k < key.length) {
      const tok = p < n ? tokens[p]! : -1;
      if (tok === TOKEN_STAR) {
        starP = p++;
        starK = k;
        continue;
      }
      if (tok >= 0) {
        const c = key.charCodeAt(k) & 0xff;
        if (tok === c || tok === TOKEN_ANY || (tok >= TOKEN_CLASS && setHas(this.classes.sets[tok - TOKEN_CLASS]!, c))) {
          p++;
          k++;
          continue;
        }
      }
      if (starP < 0) return false;
      p = starP + 1;
      k = ++starK;
    }
    while (p < n && tokens[p] === TOKEN_STAR) p++;
    return p === n;
  }
}
