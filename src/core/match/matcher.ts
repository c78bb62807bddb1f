/**
 * Trie matcher for alias patterns: one step per input byte.
 *
 * All patterns (compiled by glob.ts into tokens) share one trie (trie.ts).
 * libkmod splits each pattern into a literal prefix and a wildcard part; so
 * does a lookup here:
 *
 * - the literal prefix is a plain trie walk: one node, one binary search per
 *   byte;
 * - every trie node where some pattern's wildcard part starts (an "injection
 *   point") that the walk passes either matches its few parts directly
 *   (direct.ts) or opens a *group*: the set of wildcard-part nodes alive for
 *   the patterns hanging there, simulated all at once (step.ts). Each group's
 *   state sets are cached with their transitions as a lazily built DFA
 *   (dfa-cache.ts).
 *
 * Keeping groups apart is what makes the cache work: the patterns under
 * "pci:v" (class drivers, vfio, ...) are candidates for every PCI device, so
 * their group's states recur for every PCI modalias, while the few patterns of
 * one specific device make small groups that are cheap to step uncached. One
 * DFA over the union would see a new state set for nearly every new modalias.
 *
 * Promises: a lookup returns the values (module indices) of every pattern
 * that matches, sorted ascending and without duplicates; the caches are
 * bounded and dropped at the start of a lookup when full, so memory stays
 * flat however many distinct keys arrive.
 */
import type { ClassTable } from '../glob.js';
import { EMPTY, growTo, sortUnique } from './arrays.js';
import { TrieBuilder } from './builder.js';
import { type ByteClasses, byteClassesOf, computeByteClasses } from './byte-classes.js';
import { DfaCache, hashSet } from './dfa-cache.js';
import { DIRECT_CACHE_MAX, DirectMatcher } from './direct.js';
import { NodeStepper } from './step.js';
import { checkShape, type CompiledTrie, type PatternEntry, Trie, validateTrie } from './trie.js';

export interface MatcherStats {
  nodes: number;
  edges: number;
  byteClasses: number;
  dfaStates: number;
  dfaFlushes: number;
  /** Bytes held in typed arrays (trie plus DFA cache). */
  bytes: number;
}

/** Sets up to this size that are seen once are stepped raw instead of cached. */
const SMALL_SET = 16;

/** One generation of live groups: a DFA state id, or -1 with a raw node list at raw[off..off+len). */
interface Generation {
  id: Int32Array;
  off: Int32Array;
  len: Int32Array;
}

function generation(size: number): Generation {
  return { id: new Int32Array(size), off: new Int32Array(size), len: new Int32Array(size) };
}

export class Matcher {
  private readonly trie: Trie;
  private readonly byteClass: Uint8Array;
  private readonly dfa: DfaCache;
  private readonly stepper: NodeStepper;
  private readonly direct: DirectMatcher;
  /** literal node -> values accepted when the key ends there. */
  private literalAccepts = new Map<number, readonly number[]>();
  private flushes = 0;
  // Per lookup. Live groups (current and next generation); a lookup opens at most one group per byte.
  private gs: Generation = generation(64);
  private gsNext: Generation = generation(64);
  private raw = new Uint32Array(1024);
  private rawNext = new Uint32Array(1024);
  private rawNextUsed = 0;
  private directHits: number[] = [];

  // Parts come from TrieBuilder.finish or from fromCompiled (byte classes
  // from the tokens validateTrie found) or fromOwn (as stored).
  constructor(parts: CompiledTrie, classes: ClassTable, maxStates: number, bytes: ByteClasses = computeByteClasses(parts.edgeToken, classes)) {
    this.trie = new Trie(parts);
    const { byteClass, count } = bytes;
    this.byteClass = byteClass;
    this.dfa = new DfaCache(this.trie, count, maxStates);
    this.stepper = new NodeStepper(this.trie, classes);
    this.direct = new DirectMatcher(this.trie, classes);
  }

  /**
   * Build from compiled patterns. `maxStates` bounds the DFA cache (each state
   * costs byteClasses * 4 bytes of transitions plus its node set).
   */
  static build(entries: readonly PatternEntry[], classes: ClassTable, maxStates = 8192): Matcher {
    let total = 0;
    for (const e of entries) total += e.tokens.length;
    const b = new TrieBuilder(total);
    for (const e of entries) b.insert(e.tokens, e.value);
    return b.finish(classes, maxStates);
  }

  /**
   * A matcher from stored arrays, checked first (validateTrie). Returns the
   * problem instead of a matcher when they are not sound.
   */
  static fromCompiled(t: CompiledTrie, classes: ClassTable, nValues: number, maxStates = 8192): Matcher | string {
    const used = validateTrie(t, classes, nValues);
    return typeof used === 'string' ? used : new Matcher(t, classes, maxStates, byteClassesOf(used, classes));
  }

  /**
   * A matcher from arrays that this hotplugd laid out itself (TrieBuilder:
   * sound by construction) and that are proved unchanged since (the index
   * cache, whose CRC-32 and record hold): only checkShape's O(1) checks are
   * made, not validateTrie's pass over every node and edge, and the byte
   * classes stored with them (`byteClass`, as byteClasses() gave it; 256
   * class ids) are used instead of computed again. Never for arrays from
   * anywhere else.
   */
  static fromOwn(t: CompiledTrie, classes: ClassTable, nValues: number, maxStates = 8192, byteClass?: Uint8Array): Matcher | string {
    const problem = checkShape(t, nValues);
    if (problem !== null) return problem;
    if (byteClass === undefined) return new Matcher(t, classes, maxStates);
    if (byteClass.length !== 256) return 'byte classes are not 256 bytes';
    let count = 0;
    for (let c = 0; c < 256; c++) count = Math.max(count, byteClass[c]! + 1);
    return new Matcher(t, classes, maxStates, { byteClass, count });
  }

  /** Each byte's class (a DFA column) and their number, for meta.pb's compiled matchers. */
  byteClasses(): ByteClasses {
    return { byteClass: this.byteClass, count: this.dfa.width };
  }

  /** Values of every pattern matching `key` (a byte string), ascending. */
  match(key: string): readonly number[] {
    const { dfa, stepper, trie } = this;
    if (dfa.full()) {
      this.flushes++;
      dfa.reset();
      this.literalAccepts = new Map();
      this.direct.reset();
    }
    if (this.gs.id.length <= key.length) {
      this.gs = generation(key.length + 1);
      this.gsNext = generation(key.length + 1);
    }
    const K = dfa.width;
    let lit = 0;
    let g = 0;
    this.directHits.length = 0;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i) & 0xff;
      const cls = this.byteClass[c]!;
      const gs = this.gs;
      const next = this.gsNext;
      let w = 0;
      this.rawNextUsed = 0;
      for (let j = 0; j < g; j++) {
        const s = gs.id[j]!;
        let n: number;
        if (s >= 0) {
          const t = dfa.trans[s * K + cls]!;
          if (t >= 0) {
            if (t !== 0) next.id[w++] = t;
            continue;
          }
          n = stepper.step(dfa.setPool, dfa.setStart[s]!, dfa.setLen[s]!, c);
        } else {
          n = stepper.step(this.raw, gs.off[j]!, gs.len[j]!, c);
        }
        const t = this.keep(n, next, w);
        if (s >= 0) dfa.trans[s * K + cls] = t < 0 ? -1 : t;
        if (t !== 0) w++;
      }
      if (lit >= 0) {
        if (trie.opensWild(lit)) {
          if (!this.direct.match(lit, key, i, this.directHits) && this.inject(lit, cls, c, next, w) !== 0) w++;
        }
        lit = trie.literalChild(lit, c);
      }
      // Swap generations.
      this.gs = next;
      this.gsNext = gs;
      const r = this.raw;
      this.raw = this.rawNext;
      this.rawNext = r;
      g = w;
      if (lit < 0 && g === 0) break;
    }
    const fromLit = lit >= 0 ? this.literalAccept(lit) : EMPTY;
    const hits = this.directHits;
    if (g === 0 && hits.length === 0) return fromLit;
    const gs = this.gs;
    if (g === 1 && fromLit.length === 0 && hits.length === 0 && gs.id[0]! >= 0) return dfa.accept(gs.id[0]!);
    const out: number[] = [...fromLit, ...hits];
    for (let j = 0; j < g; j++) {
      const s = gs.id[j]!;
      if (s >= 0) for (const v of dfa.accept(s)) out.push(v);
      else for (let k = gs.off[j]!; k < gs.off[j]! + gs.len[j]!; k++) trie.appendValues(this.raw[k]!, out);
    }
    return out.length === 0 ? EMPTY : sortUnique(out);
  }

  /**
   * Place the stepper's set as group `w` of the next generation: as a cached
   * DFA state when it is large or has been seen before (so one-off sets of a
   * single device's patterns never fill the cache), otherwise as a raw node
   * list. Returns the state id, -1 for a raw group, 0 for the empty set (not
   * placed).
   */
  private keep(n: number, next: Generation, w: number): number {
    if (n === 0) return 0;
    const set = this.stepper.scratch.subarray(0, n);
    const h = hashSet(set);
    if (n > SMALL_SET || this.dfa.admit(h)) {
      const t = this.dfa.intern(set, h);
      next.id[w] = t;
      return t;
    }
    if (this.rawNextUsed + n > this.rawNext.length) this.rawNext = growTo(this.rawNext, this.rawNextUsed + n);
    this.rawNext.set(set, this.rawNextUsed);
    next.id[w] = -1;
    next.off[w] = this.rawNextUsed;
    next.len[w] = n;
    this.rawNextUsed += n;
    return -1;
  }

  /** The group literal node `lit` opens on byte c, placed as group `w` of the next generation (see keep). */
  private inject(lit: number, cls: number, c: number, next: Generation, w: number): number {
    const key = lit * this.dfa.width + cls;
    const known = this.dfa.injected.get(key);
    if (known !== undefined) {
      if (known !== 0) next.id[w] = known;
      return known;
    }
    const t = this.keep(this.stepper.open(lit, c), next, w);
    if (t >= 0) this.dfa.injected.set(key, t);
    return t;
  }

  /** Values accepted when the key ends at literal node `lit` (its own and its `*` closure's). */
  private literalAccept(lit: number): readonly number[] {
    const known = this.literalAccepts.get(lit);
    if (known !== undefined) return known;
    const out: number[] = [];
    for (const n of [lit, ...this.trie.starClosure(lit)]) this.trie.appendValues(n, out);
    const r = out.length === 0 ? EMPTY : sortUnique(out);
    if (this.literalAccepts.size >= DIRECT_CACHE_MAX) this.literalAccepts.clear();
    this.literalAccepts.set(lit, r);
    return r;
  }

  /** The trie arrays, for meta.pb's compiled_device_matches. */
  compiled(): CompiledTrie {
    const { edgeStart, edgeToken, edgeTarget, isStar, valueStart, values } = this.trie;
    return { edgeStart, edgeToken, edgeTarget, isStar, valueStart, values };
  }

  /** Number of (pattern, value) pairs. */
  patternCount(): number {
    return this.trie.values.length;
  }

  /** Every (pattern tokens, value) pair in the trie, in trie order (for meta.pb encoding). */
  entries(): PatternEntry[] {
    const { trie } = this;
    const out: PatternEntry[] = [];
    const values: number[] = [];
    trie.appendValues(0, values);
    for (const value of values) out.push({ tokens: '', value });
    trie.walkPaths(trie.edgesFrom(0, trie.edgeStart[0]!), (path, depth, node) => {
      if (trie.valueCount(node) === 0) return;
      values.length = 0;
      trie.appendValues(node, values);
      const tokens = tokenString(path, depth);
      for (const value of values) out.push({ tokens, value });
    });
    return out;
  }

  stats(): MatcherStats {
    const t = this.trie;
    const trieBytes = t.edgeStart.byteLength + t.edgeToken.byteLength + t.edgeTarget.byteLength + t.isStar.byteLength + t.valueStart.byteLength + t.values.byteLength;
    return {
      nodes: t.nodeCount,
      edges: t.edgeToken.length,
      byteClasses: this.dfa.width,
      dfaStates: this.dfa.stateCount,
      dfaFlushes: this.flushes,
      bytes: trieBytes + this.stepper.mark.byteLength + this.dfa.byteLength + this.stepper.scratch.byteLength,
    };
  }
}

/** path[0..depth) as a token string (one char per token), in chunks: no argument-count limit. */
function tokenString(path: Uint32Array, depth: number): string {
  let s = '';
  for (let i = 0; i < depth; i += 4096) s += String.fromCharCode(...path.subarray(i, Math.min(depth, i + 4096)));
  return s;
}
