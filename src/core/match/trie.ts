/**
 * The trie every lookup runs on, stored in typed arrays (CSR layout: a
 * node's edges are contiguous and sorted by token: literal bytes first, then
 * ANY, STAR and bracket classes, as glob.ts numbers them). Node 0 is the
 * root; every edge points to a higher node id, so the trie has no cycle.
 *
 * Promises: `validateTrie` accepts only arrays every method here (and every
 * lookup) can index without leaving them; the walks are iterative, so a trie
 * as deep as its longest pattern never overflows the stack.
 */
import { type ClassTable, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from '../glob.js';
import { growTo, lowerBound } from './arrays.js';

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

export class Trie implements CompiledTrie {
  readonly edgeStart: Uint32Array;
  readonly edgeToken: Uint32Array;
  readonly edgeTarget: Uint32Array;
  readonly isStar: Uint8Array;
  readonly valueStart: Uint32Array;
  readonly values: Uint32Array;
  // Scratch of walkPaths, kept between calls (direct matching walks often).
  private walkPath = new Uint32Array(64);
  private walkStack = new Uint32Array(64);

  constructor(t: CompiledTrie) {
    this.edgeStart = t.edgeStart;
    this.edgeToken = t.edgeToken;
    this.edgeTarget = t.edgeTarget;
    this.isStar = t.isStar;
    this.valueStart = t.valueStart;
    this.values = t.values;
  }

  get nodeCount(): number {
    return this.isStar.length;
  }

  /** The one loop over a node's values: appends them (ascending, unique per node) to `out`. */
  appendValues(node: number, out: number[]): void {
    const { valueStart, values } = this;
    for (let v = valueStart[node]!; v < valueStart[node + 1]!; v++) out.push(values[v]!);
  }

  valueCount(node: number): number {
    return this.valueStart[node + 1]! - this.valueStart[node]!;
  }

  /**
   * Whether a non-literal edge leaves `node`: on a literal path (all the
   * lookup's literal walk visits) that makes it an injection point, where
   * some pattern's wildcard part starts. Edges are sorted with literal bytes
   * first, so it is the last edge that tells: nothing is precomputed (a
   * per-node array cost a pass over the whole trie at every index load).
   */
  opensWild(node: number): boolean {
    const hi = this.edgeStart[node + 1]!;
    return hi > this.edgeStart[node]! && this.edgeToken[hi - 1]! >= TOKEN_ANY;
  }

  /** Index of a node's first non-literal edge (its literal edges are [edgeStart[node], wildStart)). */
  wildStart(node: number): number {
    const { edgeStart, edgeToken } = this;
    let e = edgeStart[node + 1]!;
    while (e > edgeStart[node]! && edgeToken[e - 1]! >= TOKEN_ANY) e--;
    return e;
  }

  /** The edge among [lo, hi) whose token is `c`, or -1. */
  findEdge(lo: number, hi: number, c: number): number {
    const e = lowerBound(this.edgeToken, lo, hi, c);
    return e < hi && this.edgeToken[e] === c ? e : -1;
  }

  /** The literal-edge child of a node on byte c, or -1. */
  literalChild(node: number, c: number): number {
    const e = this.findEdge(this.edgeStart[node]!, this.edgeStart[node + 1]!, c);
    return e < 0 ? -1 : this.edgeTarget[e]!;
  }

  /** Nodes reachable from `node` through `*` edges alone (not node itself). */
  starClosure(node: number): number[] {
    const out: number[] = [];
    const { edgeStart, edgeTarget } = this;
    for (let n = node; ; ) {
      // Tokens are unique per node: at most one `*` edge.
      const e = this.findEdge(edgeStart[n]!, edgeStart[n + 1]!, TOKEN_STAR);
      if (e < 0) return out;
      n = edgeTarget[e]!;
      out.push(n);
    }
  }

  /**
   * Depth-first preorder walk (edges in token order) of the subtries below
   * the given edges, calling `at` for each node with the tokens from the
   * start edge down to it (path[0..depth)).
   */
  walkPaths(startEdges: readonly number[], at: (path: Uint32Array, depth: number, node: number) => void): void {
    const { edgeStart, edgeToken, edgeTarget } = this;
    // Pending edges as (edge, depth of the node it leaves) pairs, pushed in
    // reverse so they pop in token order.
    let path = this.walkPath;
    let stack = this.walkStack;
    let sp = 0;
    if (2 * startEdges.length > stack.length) stack = this.walkStack = growTo(stack, 2 * startEdges.length);
    for (let i = startEdges.length - 1; i >= 0; i--) {
      stack[sp++] = startEdges[i]!;
      stack[sp++] = 0;
    }
    while (sp > 0) {
      const d = stack[--sp]!;
      const e = stack[--sp]!;
      if (d === path.length) path = this.walkPath = growTo(path, d + 1);
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

  /** Edges [from, edgeStart[node + 1]) of a node, as a list (walkPaths' start). */
  edgesFrom(node: number, from: number): number[] {
    const out: number[] = [];
    for (let e = from; e < this.edgeStart[node + 1]!; e++) out.push(e);
    return out;
  }
}

/**
 * Checks stored arrays before anything indexes them: everything a lookup
 * indexes is in range, edges are sorted and point forward (so no cycle),
 * values name real modules (< `nValues`). Returns the problem, or, for sound
 * arrays, which tokens the edges use (`used[token] === 1`: what byte classes
 * are computed from, byte-classes.ts), found on the same pass.
 *
 * One pass over the arrays, with each array and running offset in a local:
 * at start-up this is cold code over ~400,000 nodes (the cost is the
 * number of elements visited, not the checks made on each).
 */
export function validateTrie(t: CompiledTrie, classes: ClassTable, nValues: number): Uint8Array | string {
  const shape = checkShape(t, nValues);
  if (shape !== null) return shape;
  const { edgeStart, edgeToken, edgeTarget, isStar, valueStart } = t;
  const nodes = isStar.length;
  const edges = edgeToken.length;
  const maxToken = TOKEN_CLASS + classes.sets.length;
  const used = new Uint8Array(maxToken);
  let lo = 0;
  let vlo = 0;
  for (let n = 0; n < nodes; n++) {
    const hi = edgeStart[n + 1]!;
    const vhi = valueStart[n + 1]!;
    if (hi < lo || vhi < vlo) return 'offsets go backwards';
    // Checked before the loop below walks to it: a damaged offset of up to
    // 2^32 would otherwise run it for minutes over undefined elements.
    if (hi > edges) return 'edge offsets out of range';
    let prev = -1;
    for (let e = lo; e < hi; e++) {
      const tok = edgeToken[e]!;
      const to = edgeTarget[e]!;
      if (tok >= maxToken) return `token ${tok} out of range`;
      if (tok <= prev) return 'edges not sorted';
      if (to <= n || to >= nodes) return 'edge target out of range';
      if ((isStar[to] === 1) !== (tok === TOKEN_STAR)) return 'star flags disagree';
      used[tok] = 1;
      prev = tok;
    }
    lo = hi;
    vlo = vhi;
  }
  return used;
}

/**
 * The checks of validateTrie that do not visit every node and edge: the
 * arrays' lengths and end offsets agree, and values name real modules (<
 * `nValues`; there are few of them). All that is checked of arrays this
 * hotplugd wrote itself and has proved intact (Matcher.fromOwn).
 */
export function checkShape(t: CompiledTrie, nValues: number): string | null {
  const { edgeStart, edgeToken, edgeTarget, isStar, valueStart, values } = t;
  const nodes = isStar.length;
  const edges = edgeToken.length;
  if (nodes === 0) return 'no nodes';
  if (edgeStart.length !== nodes + 1 || valueStart.length !== nodes + 1) return 'array lengths disagree';
  if (edgeTarget.length !== edges || edgeStart[0] !== 0 || edgeStart[nodes] !== edges) return 'edge arrays disagree';
  if (valueStart[0] !== 0 || valueStart[nodes] !== values.length) return 'value arrays disagree';
  for (let i = 0; i < values.length; i++) if (values[i]! >= nValues) return `value ${values[i]} out of range`;
  return null;
}
