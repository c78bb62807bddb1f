/**
 * Trie matcher for alias patterns: one step per input byte.
 *
 * All patterns (compiled by glob.ts into tokens) share one trie, stored in
 * typed arrays (CSR layout: a node's edges are contiguous and sorted by token,
 * literal bytes first). A lookup simulates every trie state at once — a node
 * reached through `*` stays active on every byte — and caches each state set it
 * reaches, with its outgoing transitions, as a lazily built DFA (RE2's
 * approach). Transitions are indexed by byte class: bytes that no pattern can
 * tell apart share a column, which keeps a DFA state to a few hundred bytes.
 * The cache is bounded; when full it is dropped and rebuilt on demand, so
 * memory stays flat however many distinct keys arrive.
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

export class Matcher {
  // Trie, CSR.
  private readonly edgeStart: Uint32Array;
  private readonly edgeToken: Uint32Array;
  private readonly edgeTarget: Uint32Array;
  private readonly isStar: Uint8Array;
  private readonly valueStart: Uint32Array;
  private readonly values: Uint32Array;
  private readonly classes: ClassTable;
  // Byte classes.
  private readonly byteClass: Uint8Array;
  private readonly nClasses: number;
  // DFA cache.
  private readonly maxStates: number;
  private trans: Int32Array;
  private setPool: Uint32Array;
  private setStart: number[] = [];
  private setLen: number[] = [];
  private accepts: (readonly number[] | undefined)[] = [];
  private stateIds = new Map<string, number>();
  private poolUsed = 0;
  private flushes = 0;
  // Scratch for a step.
  private readonly mark: Uint32Array;
  private epoch = 0;
  private scratch: Uint32Array;

  // Parts come from TrieBuilder.finish.
  constructor(
    parts: {
      edgeStart: Uint32Array;
      edgeToken: Uint32Array;
      edgeTarget: Uint32Array;
      isStar: Uint8Array;
      valueStart: Uint32Array;
      values: Uint32Array;
    },
    classes: ClassTable,
    maxStates: number,
  ) {
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

  /** @internal used by TrieBuilder.finish */
  static fromParts(parts: ConstructorParameters<typeof Matcher>[0], classes: ClassTable, maxStates: number): Matcher {
    return new Matcher(parts, classes, maxStates);
  }

  /** Values of every pattern matching `key` (a byte string), ascending. */
  match(key: string): readonly number[] {
    let s = 0;
    const K = this.nClasses;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i) & 0xff;
      const cls = this.byteClass[c]!;
      let t = this.trans[s * K + cls]!;
      if (t < 0) t = this.step(s, cls, c);
      if (this.setLen[t] === 0) return EMPTY;
      s = t;
    }
    return this.accepts[s] ?? this.computeAccept(s);
  }

  /** Number of (pattern, value) pairs. */
  patternCount(): number {
    return this.values.length;
  }

  /** Every (pattern tokens, value) pair in the trie, in trie order (for meta.pb encoding). */
  entries(): PatternEntry[] {
    const out: PatternEntry[] = [];
    const path: number[] = [];
    const visit = (node: number): void => {
      for (let v = this.valueStart[node]!; v < this.valueStart[node + 1]!; v++) {
        out.push({ tokens: String.fromCharCode(...path), value: this.values[v]! });
      }
      for (let e = this.edgeStart[node]!; e < this.edgeStart[node + 1]!; e++) {
        path.push(this.edgeToken[e]!);
        visit(this.edgeTarget[e]!);
        path.pop();
      }
    };
    visit(0);
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
    this.stateIds = new Map();
    this.poolUsed = 0;
    this.trans.fill(-1);
    // State 0: the closure of the root.
    const n = this.collect([0], 1);
    this.intern(this.scratch.subarray(0, n));
  }

  /** Compute (and cache) the transition of state s on byte c of class cls. */
  private step(s: number, cls: number, c: number): number {
    const from = this.setStart[s]!;
    const len = this.setLen[s]!;
    const seeds: number[] = [];
    const { edgeStart, edgeToken, edgeTarget, isStar, setPool } = this;
    for (let k = 0; k < len; k++) {
      const node = setPool[from + k]!;
      if (isStar[node] === 1) seeds.push(node);
      let lo = edgeStart[node]!;
      const hi = edgeStart[node + 1]!;
      if (lo === hi) continue;
      // Literal edges come first, sorted: binary search for c.
      let a = lo;
      let b = hi;
      while (a < b) {
        const m = (a + b) >>> 1;
        if (edgeToken[m]! < c) a = m + 1;
        else b = m;
      }
      if (a < hi && edgeToken[a] === c) seeds.push(edgeTarget[a]!);
      // Wildcard edges follow the literals (tokens >= 256).
      lo = a;
      while (lo < hi && edgeToken[lo]! < TOKEN_ANY) lo++;
      for (let e = lo; e < hi; e++) {
        const tok = edgeToken[e]!;
        if (tok === TOKEN_ANY) seeds.push(edgeTarget[e]!);
        else if (tok >= TOKEN_CLASS && setHas(this.classes.sets[tok - TOKEN_CLASS]!, c)) seeds.push(edgeTarget[e]!);
      }
    }
    const n = this.collect(seeds, seeds.length);
    if (this.setLen.length >= this.maxStates) {
      // Cache full: drop it (RE2 does the same) and carry on from the new set.
      const next = this.scratch.slice(0, n);
      this.flushes++;
      this.resetCache();
      return this.intern(next);
    }
    const t = this.intern(this.scratch.subarray(0, n));
    this.trans[s * this.nClasses + cls] = t;
    return t;
  }

  /**
   * Epsilon closure of the seeds (a `*` edge may be taken without consuming),
   * deduplicated and sorted into this.scratch; returns the count.
   */
  private collect(seeds: number[], count: number): number {
    const epoch = ++this.epoch;
    if (epoch === 0xffffffff) {
      this.mark.fill(0);
      this.epoch = 1;
    }
    const e = this.epoch;
    const { mark, edgeStart, edgeToken, edgeTarget } = this;
    const out: number[] = [];
    const stack: number[] = [];
    for (let i = 0; i < count; i++) {
      const node = seeds[i]!;
      if (mark[node] !== e) {
        mark[node] = e;
        stack.push(node);
      }
    }
    while (stack.length > 0) {
      const node = stack.pop()!;
      out.push(node);
      const hi = edgeStart[node + 1]!;
      for (let k = edgeStart[node]!; k < hi; k++) {
        if (edgeToken[k] === TOKEN_STAR) {
          const t = edgeTarget[k]!;
          if (mark[t] !== e) {
            mark[t] = e;
            stack.push(t);
          }
          break; // tokens are unique per node
        }
      }
    }
    out.sort((a, b) => a - b);
    if (this.scratch.length < out.length) this.scratch = new Uint32Array(out.length * 2);
    this.scratch.set(out);
    return out.length;
  }

  /** Find or add the DFA state for a sorted node set. */
  private intern(set: Uint32Array): number {
    const n = set.length;
    const key = setKey(set);
    const known = this.stateIds.get(key);
    if (known !== undefined) return known;
    const id = this.setLen.length;
    if (this.poolUsed + n > this.setPool.length) {
      const grown = new Uint32Array(Math.max(this.setPool.length * 2, this.poolUsed + n));
      grown.set(this.setPool.subarray(0, this.poolUsed));
      this.setPool = grown;
    }
    this.setPool.set(set, this.poolUsed);
    this.setStart.push(this.poolUsed);
    this.setLen.push(n);
    this.accepts.push(undefined);
    this.poolUsed += n;
    this.stateIds.set(key, id);
    const need = (id + 1) * this.nClasses;
    if (need > this.trans.length) {
      const grown = new Int32Array(Math.min(this.maxStates, (id + 1) * 2) * this.nClasses).fill(-1);
      grown.set(this.trans);
      this.trans = grown;
    }
    return id;
  }

  private computeAccept(s: number): readonly number[] {
    const from = this.setStart[s]!;
    const len = this.setLen[s]!;
    const out: number[] = [];
    for (let k = 0; k < len; k++) {
      const node = this.setPool[from + k]!;
      for (let v = this.valueStart[node]!; v < this.valueStart[node + 1]!; v++) out.push(this.values[v]!);
    }
    let result: readonly number[] = EMPTY;
    if (out.length > 0) {
      out.sort((a, b) => a - b);
      result = out.filter((v, i) => i === 0 || out[i - 1] !== v);
    }
    this.accepts[s] = result;
    return result;
  }
}

function setKey(set: Uint32Array): string {
  let s = '';
  for (let i = 0; i < set.length; i++) {
    const v = set[i]!;
    s += String.fromCharCode(v & 0xffff, v >>> 16);
  }
  return s;
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
 * trees (the meta.pb decoder does). Children are kept as sibling lists in
 * typed arrays with move-to-front, which makes the common case — a pattern
 * sharing its prefix with the one before — one comparison per byte; `finish`
 * lays the edges out in CSR order, sorted by token within each node.
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
    const { firstChild, nextSibling, token } = this;
    const head = firstChild[node]!;
    let prev = 0;
    for (let c = head; c !== 0; c = nextSibling[c]!) {
      if (token[c] === tok) {
        if (prev !== 0) {
          // Move to front: the next pattern most likely continues here.
          nextSibling[prev] = nextSibling[c]!;
          nextSibling[c] = head;
          firstChild[node] = c;
        }
        return c;
      }
      prev = c;
    }
    const id = this.nodes++;
    if (id >= this.parent.length) this.grow();
    this.parent[id] = node;
    this.token[id] = tok;
    this.nextSibling[id] = this.firstChild[node]!;
    this.firstChild[node] = id;
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
    const { parent, token } = this;
    const edgeStart = new Uint32Array(nodes + 1);
    for (let id = 1; id < nodes; id++) edgeStart[parent[id]! + 1]!++;
    for (let i = 0; i < nodes; i++) edgeStart[i + 1]! += edgeStart[i]!;
    const fill = edgeStart.slice(0, nodes);
    const edgeToken = new Uint32Array(Math.max(0, nodes - 1));
    const edgeTarget = new Uint32Array(Math.max(0, nodes - 1));
    const isStar = new Uint8Array(nodes);
    for (let id = 1; id < nodes; id++) {
      const at = fill[parent[id]!]!++;
      edgeToken[at] = token[id]!;
      edgeTarget[at] = id;
      if (token[id] === TOKEN_STAR) isStar[id] = 1;
    }
    // Sort each node's edges by token (insertion sort: ranges are short).
    for (let n = 0; n < nodes; n++) {
      const lo = edgeStart[n]!;
      const hi = edgeStart[n + 1]!;
      if (hi - lo < 2) continue;
      for (let i = lo + 1; i < hi; i++) {
        const t = edgeToken[i]!;
        const c = edgeTarget[i]!;
        let j = i - 1;
        while (j >= lo && edgeToken[j]! > t) {
          edgeToken[j + 1] = edgeToken[j]!;
          edgeTarget[j + 1] = edgeTarget[j]!;
          j--;
        }
        edgeToken[j + 1] = t;
        edgeTarget[j + 1] = c;
      }
    }
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
    return Matcher.fromParts(
      { edgeStart, edgeToken, edgeTarget, isStar, valueStart: uniqStart, values: values.slice(0, w) },
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
