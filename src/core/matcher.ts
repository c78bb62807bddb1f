/**
 * Trie matcher for alias patterns: one step per input byte.
 *
 * All patterns (compiled by glob.ts into tokens) share one trie, stored in
 * typed arrays (CSR layout: a node's edges are contiguous and sorted by token,
 * literal bytes first). libkmod splits each pattern into a literal prefix and
 * a wildcard part; so does a lookup here:
 *
 * - the literal prefix is a plain trie walk: one node, one binary search per
 *   byte;
 * - every trie node where some pattern's wildcard part starts (an "injection
 *   point") that the walk passes opens a *group*: the set of wildcard-part
 *   nodes alive for the patterns hanging there, simulated all at once (a node
 *   reached through `*` stays active on every byte). Each group's state sets
 *   are cached with their transitions as a lazily built DFA (RE2's approach).
 *
 * Keeping groups apart is what makes the cache work: the patterns under
 * "pci:v" (class drivers, vfio, ...) are candidates for every PCI device, so
 * their group's states recur for every PCI modalias, while the few patterns of
 * one specific device make small groups that are cheap to step uncached. One
 * DFA over the union would see a new state set for nearly every new modalias.
 *
 * Transitions are indexed by byte class (bytes that no pattern can tell apart
 * share a column). The cache is bounded; when full it is dropped at the start
 * of a lookup and rebuilt on demand, so memory stays flat however many
 * distinct keys arrive.
 *
 * A lookup returns the values (module indices) of every pattern that matches,
 * sorted ascending and without duplicates.
 */
import { type ClassTable, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from './glob.js';

export interface PatternEntry {
  /** Compiled pattern: one char per token (glob.ts). */
  tokens: string;
  value: number;
}

/** The arrays a Matcher runs on (see proto/meta.proto, CompiledMatcher). */
export interface CompiledTrie {
  edgeStart: Uint32Array;
  edgeToken: Uint32Array;
  edgeTarget: Uint32Array;
  isStar: Uint8Array;
  valueStart: Uint32Array;
  values: Uint32Array;
}

export interface MatcherStats {
  nodes: number;
  edges: number;
  byteClasses: number;
  dfaStates: number;
  dfaFlushes: number;
  /** Bytes held in typed arrays (trie plus DFA cache). */
  bytes: number;
}

const EMPTY: readonly number[] = Object.freeze([]);
/** Sets up to this size that are seen once are stepped raw instead of cached. */
const SMALL_SET = 16;
/** Injection points with at most this many patterns are matched directly, without state sets... */
const DIRECT_MAX = 8;
/** ...until they have been met this many times since the last cache flush. */
const HOT_AFTER = 4;
/**
 * The DFA cache is also flushed when its state sets hold this many node ids
 * (16 MB): a state's set can be as large as a pattern is long, so a count of
 * states alone would not bound memory for long patterns.
 */
const MAX_POOL_NODES = 1 << 22;
/** Injection points whose direct-match parts are kept (and literal nodes whose accepted values are). */
const DIRECT_CACHE_MAX = 2048;

interface DirectParts {
  /** null: too many patterns here, always a group. */
  parts: { tokens: Uint32Array; value: number }[] | null;
  seen: number;
}

export class Matcher {
  // Trie, CSR.
  private readonly edgeStart: Uint32Array;
  private readonly edgeToken: Uint32Array;
  private readonly edgeTarget: Uint32Array;
  private readonly isStar: Uint8Array;
  private readonly valueStart: Uint32Array;
  private readonly values: Uint32Array;
  private readonly classes: ClassTable;
  /** Per node: 1 when some non-literal edge leaves it and its path is all literal (an injection point). */
  private readonly injects: Uint8Array;

  // Byte classes.
  private readonly byteClass: Uint8Array;
  private readonly nClasses: number;
  // DFA cache: state 0 is the empty (dead) set.
  private readonly maxStates: number;
  private trans: Int32Array;
  private setPool: Uint32Array;
  private setStart: number[] = [];
  private setLen: number[] = [];
  private accepts: (readonly number[] | undefined)[] = [];
  /** Open-addressing table: set hash -> state id (-1 empty). */
  private stateTable = new Int32Array(1 << 14).fill(-1);
  private stateHash: number[] = [];
  /** (literal node, byte class) -> group state opened there. */
  private injected = new Map<number, number>();
  /** literal node -> values accepted when the key ends there. */
  private literalAccepts = new Map<number, readonly number[]>();
  private poolUsed = 0;
  private flushes = 0;
  // Scratch.
  private readonly mark: Uint32Array;
  private epoch = 0;
  private scratch: Uint32Array;
  /** Live groups (current and next generation); a lookup opens at most one group per byte. */
  private gs: Generation = generation(64);
  private gsNext: Generation = generation(64);
  private raw = new Uint32Array(1024);
  private rawNext = new Uint32Array(1024);
  private rawNextUsed = 0;
  private readonly seen = new Uint8Array(1 << 16);
  private seenMarks = 0;
  /** Injection point -> its few wildcard parts, matched directly (see matchDirect). */
  private direct = new Map<number, DirectParts>();
  private directHits: number[] = [];
  private seeds = new Uint32Array(256);
  private nSeeds = 0;
  private stack = new Uint32Array(256);
  private walkPath = new Uint32Array(64);
  private walkStack = new Uint32Array(64);

  // Parts come from TrieBuilder.finish (with the injection points it
  // computed on its way) or from fromCompiled.
  constructor(parts: CompiledTrie & { injects?: Uint8Array }, classes: ClassTable, maxStates: number) {
    this.edgeStart = parts.edgeStart;
    this.edgeToken = parts.edgeToken;
    this.edgeTarget = parts.edgeTarget;
    this.isStar = parts.isStar;
    this.valueStart = parts.valueStart;
    this.values = parts.values;
    this.classes = classes;
    const { byteClass, count } = computeByteClasses(parts.edgeToken, classes);
    this.byteClass = byteClass;
    this.nClasses = count;
    this.maxStates = Math.max(16, maxStates);
    const nodes = parts.isStar.length;
    this.injects = parts.injects ?? computeInjectionPoints(parts.edgeStart, parts.edgeToken, parts.edgeTarget, nodes);
    this.mark = new Uint32Array(nodes);
    this.scratch = new Uint32Array(64);
    this.trans = new Int32Array(64 * count).fill(-1);
    this.setPool = new Uint32Array(1024);
    this.resetCache();
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

  /** Values of every pattern matching `key` (a byte string), ascending. */
  match(key: string): readonly number[] {
    if (this.setLen.length >= this.maxStates || this.poolUsed > MAX_POOL_NODES) {
      this.flushes++;
      this.resetCache();
    }
    if (this.gs.id.length <= key.length) {
      this.gs = generation(key.length + 1);
      this.gsNext = generation(key.length + 1);
    }
    const K = this.nClasses;
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
          const t = this.trans[s * K + cls]!;
          if (t >= 0) {
            if (t !== 0) next.id[w++] = t;
            continue;
          }
          n = this.stepNodes(this.setPool, this.setStart[s]!, this.setLen[s]!, c);
        } else {
          n = this.stepNodes(this.raw, gs.off[j]!, gs.len[j]!, c);
        }
        const t = this.keep(n, next, w);
        if (s >= 0) this.trans[s * K + cls] = t < 0 ? -1 : t;
        if (t !== 0) w++;
      }
      if (lit >= 0) {
        if (this.injects[lit] === 1) {
          if (!this.matchDirect(lit, key, i) && this.inject(lit, cls, c, next, w) !== 0) w++;
        }
        lit = this.literalChild(lit, c);
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
    if (g === 1 && fromLit.length === 0 && hits.length === 0 && gs.id[0]! >= 0) return this.accepts[gs.id[0]!] ?? this.computeAccept(gs.id[0]!);
    const out: number[] = [...fromLit, ...hits];
    for (let j = 0; j < g; j++) {
      const s = gs.id[j]!;
      if (s >= 0) for (const v of this.accepts[s] ?? this.computeAccept(s)) out.push(v);
      else this.pushValues(this.raw, gs.off[j]!, gs.len[j]!, out);
    }
    return out.length === 0 ? EMPTY : sortUnique(out);
  }

  /**
   * Place the set in scratch[0..n) as group `w` of the next generation: as a
   * cached DFA state when it is large or has been seen before (so one-off
   * sets of a single device's patterns never fill the cache), otherwise as a
   * raw node list. Returns the state id, -1 for a raw group, 0 for the empty
   * set (not placed).
   */
  private keep(n: number, next: Generation, w: number): number {
    if (n === 0) return 0;
    const set = this.scratch.subarray(0, n);
    const h = hashSet(set);
    if (n > SMALL_SET || this.admit(h)) {
      const t = this.intern(set, h);
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

  /** Index of a node's first non-literal edge (edges are sorted: literals, ANY, STAR, classes). */
  private wildStart(node: number): number {
    let e = this.edgeStart[node + 1]!;
    while (e > this.edgeStart[node]! && this.edgeToken[e - 1]! >= TOKEN_ANY) e--;
    return e;
  }

  /** Patterns whose wildcard part starts at literal node `lit`, counted up to `limit` + 1. */
  private wildCount(lit: number, limit: number): number {
    let count = 0;
    const stack: number[] = [];
    for (let e = this.wildStart(lit); e < this.edgeStart[lit + 1]!; e++) stack.push(this.edgeTarget[e]!);
    while (stack.length > 0 && count <= limit) {
      const n = stack.pop()!;
      count += this.valueStart[n + 1]! - this.valueStart[n]!;
      for (let e = this.edgeStart[n]!; e < this.edgeStart[n + 1]!; e++) stack.push(this.edgeTarget[e]!);
    }
    return count;
  }

  /**
   * Few patterns hang at this injection point (typically one device's
   * entries) and it is not hot: test each wildcard part directly against the
   * rest of the key (glob matching with backtracking to the last `*`, linear
   * in practice), which costs less than stepping, hashing and caching state
   * sets that no other key will meet. Returns false when the caller should
   * open a group instead: many patterns, or a point met often enough
   * (HOT_AFTER times since the last flush) for cached states to pay off.
   */
  private matchDirect(lit: number, key: string, from: number): boolean {
    let d = this.direct.get(lit);
    if (d === undefined) {
      // Bounded like the DFA cache: a huge key set must not grow memory.
      if (this.direct.size >= DIRECT_CACHE_MAX) this.direct.clear();
      d = { parts: this.wildCount(lit, DIRECT_MAX) <= DIRECT_MAX ? this.wildParts(lit) : null, seen: 0 };
      this.direct.set(lit, d);
    }
    if (d.parts === null || ++d.seen > HOT_AFTER) return false;
    for (const part of d.parts) if (this.globAt(part.tokens, key, from)) this.directHits.push(part.value);
    return true;
  }

  /** The wildcard parts hanging at a literal node, as token arrays with their values. */
  private wildParts(lit: number): { tokens: Uint32Array; value: number }[] {
    const found: { tokens: Uint32Array; value: number }[] = [];
    const roots: number[] = [];
    for (let e = this.wildStart(lit); e < this.edgeStart[lit + 1]!; e++) roots.push(e);
    this.walkPaths(roots, (path, depth, node) => {
      for (let v = this.valueStart[node]!; v < this.valueStart[node + 1]!; v++) found.push({ tokens: path.slice(0, depth), value: this.values[v]! });
    });
    return found;
  }

  /**
   * Depth-first preorder walk (edges in token order) of the subtries below
   * the given edges, calling `at` for each node with the tokens from the
   * start edge down to it (path[0..depth)). Iterative: a trie from meta.pb or
   * from a long pattern may be as deep as its longest pattern.
   */
  private walkPaths(startEdges: readonly number[], at: (path: Uint32Array, depth: number, node: number) => void): void {
    const { edgeStart, edgeToken, edgeTarget } = this;
    // Scratch kept between calls (wildParts runs on many lookups); pending
    // edges as (edge, depth of the node it leaves) pairs, pushed in reverse
    // so they pop in token order.
    let path = this.walkPath;
    let stack = this.walkStack;
    let sp = 0;
    for (let i = startEdges.length - 1; i >= 0; i--) {
      if (sp + 2 > stack.length) stack = this.walkStack = grow(stack);
      stack[sp++] = startEdges[i]!;
      stack[sp++] = 0;
    }
    while (sp > 0) {
      const d = stack[--sp]!;
      const e = stack[--sp]!;
      if (d === path.length) path = this.walkPath = grow(path);
      path[d] = edgeToken[e]!;
      const node = edgeTarget[e]!;
      at(path, d + 1, node);
      const lo = edgeStart[node]!;
      const hi = edgeStart[node + 1]!;
      if (sp + 2 * (hi - lo) > stack.length) stack = this.walkStack = growTo(stack, sp + 2 * (hi - lo));
      for (let k = hi - 1; k >= lo; k--) {
        stack[sp++] = k;
        stack[sp++] = d + 1;
      }
    }
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

  /**
   * Admission filter (TinyLFU's doorkeeper): true when a set with this hash
   * was seen recently. The filter is cleared once a quarter of it is marked,
   * so "recently" is a window of some 16,000 distinct sets: sets that recur
   * within it (the shared groups) are cached, one-offs are not, however many
   * times a huge corpus is cycled. False positives only cost a cache slot.
   */
  private admit(h: number): boolean {
    const i = h & (this.seen.length - 1);
    if (this.seen[i] === 1) return true;
    this.seen[i] = 1;
    if (++this.seenMarks > this.seen.length >> 2) {
      this.seen.fill(0);
      this.seenMarks = 0;
    }
    return false;
  }

  private pushValues(nodes: Uint32Array, from: number, len: number, out: number[]): void {
    for (let k = from; k < from + len; k++) {
      const node = nodes[k]!;
      for (let v = this.valueStart[node]!; v < this.valueStart[node + 1]!; v++) out.push(this.values[v]!);
    }
  }

  /** The trie arrays, for meta.pb's compiled_device_matches. */
  compiled(): CompiledTrie {
    return {
      edgeStart: this.edgeStart,
      edgeToken: this.edgeToken,
      edgeTarget: this.edgeTarget,
      isStar: this.isStar,
      valueStart: this.valueStart,
      values: this.values,
    };
  }

  /**
   * A matcher from stored arrays, checked first: everything a lookup indexes
   * is in range, edges are sorted and point forward (so no cycle), values name
   * real modules. Returns the problem instead of a matcher when they are not.
   */
  static fromCompiled(t: CompiledTrie, classes: ClassTable, nValues: number, maxStates = 8192): Matcher | string {
    const nodes = t.isStar.length;
    const edges = t.edgeToken.length;
    if (nodes === 0) return 'no nodes';
    if (t.edgeStart.length !== nodes + 1 || t.valueStart.length !== nodes + 1) return 'array lengths disagree';
    if (t.edgeTarget.length !== edges || t.edgeStart[0] !== 0 || t.edgeStart[nodes] !== edges) return 'edge arrays disagree';
    if (t.valueStart[0] !== 0 || t.valueStart[nodes] !== t.values.length) return 'value arrays disagree';
    const maxToken = TOKEN_CLASS + classes.sets.length;
    for (let n = 0; n < nodes; n++) {
      const lo = t.edgeStart[n]!;
      const hi = t.edgeStart[n + 1]!;
      if (hi < lo || t.valueStart[n + 1]! < t.valueStart[n]!) return 'offsets go backwards';
      // Checked before the loop below walks to it: a damaged offset of up to
      // 2^32 would otherwise run it for minutes over undefined elements.
      if (hi > edges) return 'edge offsets out of range';
      for (let e = lo; e < hi; e++) {
        const tok = t.edgeToken[e]!;
        const to = t.edgeTarget[e]!;
        if (tok >= maxToken) return `token ${tok} out of range`;
        if (e > lo && t.edgeToken[e - 1]! >= tok) return 'edges not sorted';
        if (to <= n || to >= nodes) return 'edge target out of range';
        if ((t.isStar[to] === 1) !== (tok === TOKEN_STAR)) return 'star flags disagree';
      }
    }
    for (let i = 0; i < t.values.length; i++) if (t.values[i]! >= nValues) return `value ${t.values[i]} out of range`;
    return new Matcher(t, classes, maxStates);
  }

  /** Number of (pattern, value) pairs. */
  patternCount(): number {
    return this.values.length;
  }

  /** Every (pattern tokens, value) pair in the trie, in trie order (for meta.pb encoding). */
  entries(): PatternEntry[] {
    const out: PatternEntry[] = [];
    for (let v = this.valueStart[0]!; v < this.valueStart[1]!; v++) out.push({ tokens: '', value: this.values[v]! });
    const roots: number[] = [];
    for (let e = this.edgeStart[0]!; e < this.edgeStart[1]!; e++) roots.push(e);
    this.walkPaths(roots, (path, depth, node) => {
      const lo = this.valueStart[node]!;
      const hi = this.valueStart[node + 1]!;
      if (lo === hi) return;
      const tokens = tokenString(path, depth);
      for (let v = lo; v < hi; v++) out.push({ tokens, value: this.values[v]! });
    });
    return out;
  }

  stats(): MatcherStats {
    const bytes =
      this.edgeStart.byteLength +
      this.edgeToken.byteLength +
      this.edgeTarget.byteLength +
      this.isStar.byteLength +
      this.valueStart.byteLength +
      this.values.byteLength +
      this.mark.byteLength +
      this.trans.byteLength +
      this.setPool.byteLength +
      this.scratch.byteLength;
    return {
      nodes: this.isStar.length,
      edges: this.edgeToken.length,
      byteClasses: this.nClasses,
      dfaStates: this.setLen.length,
      dfaFlushes: this.flushes,
      bytes,
    };
  }

  private resetCache(): void {
    this.setStart = [];
    this.setLen = [];
    this.accepts = [];
    this.stateTable.fill(-1);
    this.stateHash = [];
    this.injected = new Map();
    this.literalAccepts = new Map();
    this.direct = new Map();
    this.poolUsed = 0;
    if (this.setPool.length > MAX_POOL_NODES) this.setPool = new Uint32Array(1024);
    this.trans.fill(-1);
    this.intern(new Uint32Array(0)); // state 0: dead
  }

  /** The literal-edge child of a literal node on byte c, or -1. */
  private literalChild(node: number, c: number): number {
    const { edgeToken } = this;
    let a = this.edgeStart[node]!;
    let b = this.edgeStart[node + 1]!;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (edgeToken[m]! < c) a = m + 1;
      else b = m;
    }
    return a < this.edgeStart[node + 1]! && edgeToken[a] === c ? this.edgeTarget[a]! : -1;
  }

  /**
   * Add to `seeds` what the node set reaches on byte c. Literal edges are
   * followed only when `literal` is true: for a literal-path node they belong
   * to the literal walk, not to a group.
   */
  private advance(node: number, c: number, literal: boolean): void {
    const { edgeStart, edgeToken, edgeTarget } = this;
    if (this.isStar[node] === 1) this.seed(node);
    const hi = edgeStart[node + 1]!;
    let wild = hi;
    while (wild > edgeStart[node]! && edgeToken[wild - 1]! >= TOKEN_ANY) wild--;
    if (literal) {
      // Literal edges come first, sorted: binary search for c.
      let a = edgeStart[node]!;
      let b = wild;
      while (a < b) {
        const m = (a + b) >>> 1;
        if (edgeToken[m]! < c) a = m + 1;
        else b = m;
      }
      if (a < wild && edgeToken[a] === c) this.seed(edgeTarget[a]!);
    }
    for (let e = wild; e < hi; e++) {
      const tok = edgeToken[e]!;
      if (tok === TOKEN_ANY) this.seed(edgeTarget[e]!);
      else if (tok >= TOKEN_CLASS && setHas(this.classes.sets[tok - TOKEN_CLASS]!, c)) this.seed(edgeTarget[e]!);
    }
  }

  private seed(node: number): void {
    if (this.nSeeds === this.seeds.length) {
      const grown = new Uint32Array(this.seeds.length * 2);
      grown.set(this.seeds);
      this.seeds = grown;
    }
    this.seeds[this.nSeeds++] = node;
  }

  /** What the node list reaches on byte c, closed and sorted into scratch; returns the count. */
  private stepNodes(nodes: Uint32Array, from: number, len: number, c: number): number {
    this.nSeeds = 0;
    for (let k = from; k < from + len; k++) this.advance(nodes[k]!, c, true);
    return this.collect();
  }

  /**
   * The group a literal node opens on byte c (its wildcard edges and the `*`
   * nodes in its closure), placed as group `w` of the next generation.
   */
  private inject(lit: number, cls: number, c: number, next: Generation, w: number): number {
    const key = lit * this.nClasses + cls;
    const known = this.injected.get(key);
    if (known !== undefined) {
      if (known !== 0) next.id[w] = known;
      return known;
    }
    this.nSeeds = 0;
    this.advance(lit, c, false);
    for (const star of this.starClosure(lit)) this.advance(star, c, true);
    const t = this.keep(this.collect(), next, w);
    if (t >= 0) this.injected.set(key, t);
    return t;
  }

  /** Nodes reachable from `node` through `*` edges alone (not node itself). */
  private starClosure(node: number): number[] {
    const out: number[] = [];
    const { edgeStart, edgeToken, edgeTarget } = this;
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop()!;
      for (let k = edgeStart[n]!; k < edgeStart[n + 1]!; k++) {
        if (edgeToken[k] === TOKEN_STAR) {
          out.push(edgeTarget[k]!);
          stack.push(edgeTarget[k]!);
          break; // tokens are unique per node
        }
      }
    }
    return out;
  }

  private literalAccept(lit: number): readonly number[] {
    const known = this.literalAccepts.get(lit);
    if (known !== undefined) return known;
    const out: number[] = [];
    for (const n of [lit, ...this.starClosure(lit)]) {
      for (let v = this.valueStart[n]!; v < this.valueStart[n + 1]!; v++) out.push(this.values[v]!);
    }
    const r = out.length === 0 ? EMPTY : sortUnique(out);
    if (this.literalAccepts.size >= DIRECT_CACHE_MAX) this.literalAccepts.clear();
    this.literalAccepts.set(lit, r);
    return r;
  }

  /**
   * Epsilon closure of this.seeds (a `*` edge may be taken without consuming),
   * deduplicated and sorted into this.scratch; returns the count.
   */
  private collect(): number {
    const epoch = ++this.epoch;
    if (epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
    const e = this.epoch;
    const { mark, edgeStart, edgeToken, edgeTarget, seeds } = this;
    let stack: Uint32Array = this.stack;
    let out: Uint32Array = this.scratch;
    let sp = 0;
    let n = 0;
    for (let i = 0; i < this.nSeeds; i++) {
      const node = seeds[i]!;
      if (mark[node] !== e) {
        mark[node] = e;
        if (sp === stack.length) stack = this.stack = grow(stack);
        stack[sp++] = node;
      }
    }
    while (sp > 0) {
      const node = stack[--sp]!;
      if (n === out.length) out = this.scratch = grow(out);
      out[n++] = node;
      const hi = edgeStart[node + 1]!;
      // `*` sorts after literals and ANY: scan from the end.
      for (let k = hi - 1; k >= edgeStart[node]!; k--) {
        const tok = edgeToken[k]!;
        if (tok === TOKEN_STAR) {
          const t = edgeTarget[k]!;
          if (mark[t] !== e) {
            mark[t] = e;
            if (sp === stack.length) stack = this.stack = grow(stack);
            stack[sp++] = t;
          }
          break;
        }
        if (tok < TOKEN_STAR) break;
      }
    }
    if (n > 1) out.subarray(0, n).sort();
    return n;
  }

  /** Find or add the DFA state for a sorted node set. */
  private intern(set: Uint32Array, h = hashSet(set)): number {
    const n = set.length;
    const table = this.stateTable;
    const mask = table.length - 1;
    let slot = h & mask;
    for (;;) {
      const id = table[slot]!;
      if (id < 0) break;
      if (this.stateHash[id] === h && this.setLen[id] === n && this.sameSet(id, set)) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.setLen.length;
    if (this.poolUsed + n > this.setPool.length) {
      const grown = new Uint32Array(Math.max(this.setPool.length * 2, this.poolUsed + n));
      grown.set(this.setPool.subarray(0, this.poolUsed));
      this.setPool = grown;
    }
    this.setPool.set(set, this.poolUsed);
    this.setStart.push(this.poolUsed);
    this.setLen.push(n);
    this.stateHash.push(h);
    this.accepts.push(undefined);
    this.poolUsed += n;
    table[slot] = id;
    if ((id + 1) * 2 > table.length) this.rehashStates();
    const need = (id + 1) * this.nClasses;
    if (need > this.trans.length) {
      // A lookup may run past maxStates before the next flush: grow freely.
      const grown = new Int32Array(Math.max(need, Math.min(this.maxStates, (id + 1) * 2) * this.nClasses)).fill(-1);
      grown.set(this.trans);
      this.trans = grown;
    }
    return id;
  }

  private sameSet(id: number, set: Uint32Array): boolean {
    const from = this.setStart[id]!;
    for (let i = 0; i < set.length; i++) if (this.setPool[from + i] !== set[i]) return false;
    return true;
  }

  private rehashStates(): void {
    const table = new Int32Array(this.stateTable.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let id = 0; id < this.stateHash.length; id++) {
      let slot = this.stateHash[id]! & mask;
      while (table[slot]! >= 0) slot = (slot + 1) & mask;
      table[slot] = id;
    }
    this.stateTable = table;
  }

  private computeAccept(s: number): readonly number[] {
    const from = this.setStart[s]!;
    const len = this.setLen[s]!;
    const out: number[] = [];
    for (let k = 0; k < len; k++) {
      const node = this.setPool[from + k]!;
      for (let v = this.valueStart[node]!; v < this.valueStart[node + 1]!; v++) out.push(this.values[v]!);
    }
    const result = out.length === 0 ? EMPTY : sortUnique(out);
    this.accepts[s] = result;
    return result;
  }
}

function hashSet(set: Uint32Array): number {
  let h = 0x811c9dc5 ^ set.length;
  for (let i = 0; i < set.length; i++) h = Math.imul(h ^ set[i]!, 0x01000193);
  // Keep it a small integer (Smi): V8 then stores it unboxed.
  return (h ^ (h >>> 16)) & 0x3fffffff;
}

function growTo(a: Uint32Array, min: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(Math.max(min, a.length * 2));
  b.set(a);
  return b;
}

/** One generation of live groups: a DFA state id, or -1 with a raw node list at raw[off..off+len). */
interface Generation {
  id: Int32Array;
  off: Int32Array;
  len: Int32Array;
}

function generation(size: number): Generation {
  return { id: new Int32Array(size), off: new Int32Array(size), len: new Int32Array(size) };
}

function grow(a: Uint32Array): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}

/** path[0..depth) as a token string (one char per token), in chunks: no argument-count limit. */
function tokenString(path: Uint32Array, depth: number): string {
  let s = '';
  for (let i = 0; i < depth; i += 4096) s += String.fromCharCode(...path.subarray(i, Math.min(depth, i + 4096)));
  return s;
}

function sortUnique(xs: number[]): number[] {
  xs.sort((a, b) => a - b);
  let w = 0;
  for (let i = 0; i < xs.length; i++) if (i === 0 || xs[i] !== xs[i - 1]) xs[w++] = xs[i]!;
  xs.length = w;
  return xs;
}

/** Injection points: literal-path nodes with at least one non-literal edge. */
function computeInjectionPoints(edgeStart: Uint32Array, edgeToken: Uint32Array, edgeTarget: Uint32Array, nodes: number): Uint8Array {
  const injects = new Uint8Array(nodes);
  const stack = [0];
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (let e = edgeStart[n]!; e < edgeStart[n + 1]!; e++) {
      if (edgeToken[e]! < 256) stack.push(edgeTarget[e]!);
      else injects[n] = 1;
    }
  }
  return injects;
}

/**
 * Partition the 256 bytes so that bytes in one class are accepted by exactly
 * the same tokens: every literal byte is its own class; other bytes are
 * grouped by their membership in each bracket set.
 */
function computeByteClasses(edgeToken: Uint32Array, classes: ClassTable): { byteClass: Uint8Array; count: number } {
  const literal = new Uint8Array(256);
  const usedSets = new Set<number>();
  for (let e = 0; e < edgeToken.length; e++) {
    const tok = edgeToken[e]!;
    if (tok < 256) literal[tok] = 1;
    else if (tok >= TOKEN_CLASS) usedSets.add(tok - TOKEN_CLASS);
  }
  const sets = [...usedSets].sort((a, b) => a - b).map((i) => classes.sets[i]!);
  const ids = new Map<string, number>();
  const byteClass = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    let sig = literal[c] === 1 ? `L${c}` : 'S';
    if (literal[c] !== 1) for (const s of sets) sig += setHas(s, c) ? '1' : '0';
    let id = ids.get(sig);
    if (id === undefined) {
      id = ids.size;
      ids.set(sig, id);
    }
    byteClass[c] = id;
  }
  return { byteClass, count: ids.size };
}

/**
 * Builds the trie node by node: `child(node, token)` finds or creates an edge,
 * so index sources can insert patterns as token strings or walk their own
 * trees (the meta.pb decoder does). Children are sibling lists in typed
 * arrays, kept sorted by token; `finish` lays the edges out in CSR order.
 */
export class TrieBuilder {
  private parent: Uint32Array;
  private token: Uint32Array;
  private firstChild: Uint32Array;
  private nextSibling: Uint32Array;
  private nodes = 1;
  private valueNode: number[] = [];
  private valueOf: number[] = [];

  /** `expectedNodes` only sizes the first allocation; the builder grows as needed. */
  constructor(expectedNodes = 1024) {
    const cap = Math.max(1024, expectedNodes);
    this.parent = new Uint32Array(cap);
    this.token = new Uint32Array(cap);
    this.firstChild = new Uint32Array(cap);
    this.nextSibling = new Uint32Array(cap);
  }

  /** The child of `node` along `tok`, created when missing (0 means "none": the root is never a child). */
  child(node: number, tok: number): number {
    const { nextSibling, token } = this;
    // Sibling lists are kept sorted by token, so finish() needs no sort.
    let prev = 0;
    let c = this.firstChild[node]!;
    while (c !== 0 && token[c]! < tok) {
      prev = c;
      c = nextSibling[c]!;
    }
    if (c !== 0 && token[c] === tok) return c;
    const id = this.nodes++;
    if (id >= this.parent.length) this.grow();
    this.parent[id] = node;
    this.token[id] = tok;
    this.nextSibling[id] = c;
    if (prev === 0) this.firstChild[node] = id;
    else this.nextSibling[prev] = id;
    return id;
  }

  addValue(node: number, value: number): void {
    this.valueNode.push(node);
    this.valueOf.push(value);
  }

  insert(tokens: string, value: number): void {
    let n = 0;
    for (let i = 0; i < tokens.length; i++) n = this.child(n, tokens.charCodeAt(i));
    this.addValue(n, value);
  }

  finish(classes: ClassTable, maxStates = 8192): Matcher {
    const nodes = this.nodes;
    const { token, firstChild, nextSibling, parent } = this;
    // Renumber in depth-first preorder (children in token order, as the
    // sibling lists already are): a node's first child then follows it in
    // memory, so walking one pattern's path reads the arrays nearly in order.
    const newId = new Uint32Array(nodes);
    const edgeStart = new Uint32Array(nodes + 1);
    const edgeToken = new Uint32Array(Math.max(0, nodes - 1));
    const edgeTarget = new Uint32Array(Math.max(0, nodes - 1)); // old ids until the fix-up below
    const isStar = new Uint8Array(nodes);
    // Literal-path nodes (all-literal path from the root) and, among them,
    // injection points (a non-literal edge leaves them): see Matcher.
    const literal = new Uint8Array(nodes);
    const injects = new Uint8Array(nodes);
    let next = 0;
    let edges = 0;
    let n = 0;
    for (;;) {
      const id = next++;
      newId[n] = id;
      if (n !== 0 && token[n] === TOKEN_STAR) isStar[id] = 1;
      const lit = n === 0 || (token[n]! < 256 && literal[newId[parent[n]!]!] === 1);
      if (lit) literal[id] = 1;
      edgeStart[id] = edges;
      for (let c = firstChild[n]!; c !== 0; c = nextSibling[c]!) {
        if (lit && token[c]! >= 256) injects[id] = 1;
        edgeToken[edges] = token[c]!;
        edgeTarget[edges++] = c;
      }
      // Preorder without a stack: down to the first child, else to the next
      // sibling of the nearest ancestor that has one.
      if (firstChild[n] !== 0) {
        n = firstChild[n]!;
        continue;
      }
      while (n !== 0 && nextSibling[n] === 0) n = parent[n]!;
      if (n === 0) break;
      n = nextSibling[n]!;
    }
    edgeStart[nodes] = edges;
    for (let e = 0; e < edges; e++) edgeTarget[e] = newId[edgeTarget[e]!]!;
    for (let i = 0; i < this.valueNode.length; i++) this.valueNode[i] = newId[this.valueNode[i]!]!;
    // Values per node, sorted and unique.
    const valueStart = new Uint32Array(nodes + 1);
    for (const n of this.valueNode) valueStart[n + 1]!++;
    for (let i = 0; i < nodes; i++) valueStart[i + 1]! += valueStart[i]!;
    const vfill = valueStart.slice(0, nodes);
    const raw = new Uint32Array(this.valueNode.length);
    for (let i = 0; i < this.valueNode.length; i++) raw[vfill[this.valueNode[i]!]!++] = this.valueOf[i]!;
    const values = new Uint32Array(raw.length);
    let w = 0;
    const uniqStart = new Uint32Array(nodes + 1);
    for (let n = 0; n < nodes; n++) {
      uniqStart[n] = w;
      const lo = valueStart[n]!;
      const hi = valueStart[n + 1]!;
      if (hi === lo) continue;
      if (hi - lo > 1) raw.subarray(lo, hi).sort();
      for (let i = lo; i < hi; i++) if (i === lo || raw[i] !== raw[i - 1]) values[w++] = raw[i]!;
    }
    uniqStart[nodes] = w;
    return new Matcher(
      { edgeStart, edgeToken, edgeTarget, isStar, valueStart: uniqStart, values: values.slice(0, w), injects },
      classes,
      maxStates,
    );
  }

  private grow(): void {
    const twice = (a: Uint32Array): Uint32Array => {
      const b = new Uint32Array(a.length * 2);
      b.set(a);
      return b;
    };
    this.parent = twice(this.parent);
    this.token = twice(this.token);
    this.firstChild = twice(this.firstChild);
    this.nextSibling = twice(this.nextSibling);
  }
}
