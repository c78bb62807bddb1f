/**
 * Stepping a set of trie nodes on one byte, all patterns at once (an NFA
 * step): what the nodes reach, closed over `*` edges (a `*` may match the
 * empty string) and sorted, in `scratch[0..n)`. The DFA cache interns these
 * sets; a group too new to be cached is stepped here on every byte.
 *
 * Promises: the result is duplicate-free and ascending (so equal sets are
 * equal arrays); scratch buffers grow as needed and are reused.
 */
import { type ClassTable, setHas, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR } from '../glob.js';
import { growTo } from './arrays.js';
import type { Trie } from './trie.js';

export class NodeStepper {
  /** The last result: scratch[0..n), n returned by the step. */
  scratch = new Uint32Array(64);
  /** Per node: the epoch in which collect last saw it. */
  readonly mark: Uint32Array;
  private epoch = 0;
  private seeds = new Uint32Array(256);
  private nSeeds = 0;
  private stack = new Uint32Array(256);
  private readonly edgeStart: Uint32Array;
  private readonly edgeToken: Uint32Array;
  private readonly edgeTarget: Uint32Array;
  private readonly isStar: Uint8Array;

  constructor(
    private readonly trie: Trie,
    private readonly classes: ClassTable,
  ) {
    this.edgeStart = trie.edgeStart;
    this.edgeToken = trie.edgeToken;
    this.edgeTarget = trie.edgeTarget;
    this.isStar = trie.isStar;
    this.mark = new Uint32Array(trie.nodeCount);
  }

  /** What nodes[from..from+len) reach on byte c; returns the count in scratch. */
  step(nodes: Uint32Array, from: number, len: number, c: number): number {
    this.nSeeds = 0;
    for (let k = from; k < from + len; k++) this.advance(nodes[k]!, c, true);
    return this.collect();
  }

  /**
   * The group a literal-path node opens on byte c: its wildcard edges (its
   * literal edges belong to the literal walk) and what the `*` nodes in its
   * closure reach. Returns the count in scratch.
   */
  open(lit: number, c: number): number {
    this.nSeeds = 0;
    this.advance(lit, c, false);
    for (const star of this.trie.starClosure(lit)) this.advance(star, c, true);
    return this.collect();
  }

  /** Add to `seeds` what the node reaches on byte c; literal edges only when `literal`. */
  private advance(node: number, c: number, literal: boolean): void {
    const { edgeStart, edgeToken, edgeTarget } = this;
    if (this.isStar[node] === 1) this.seed(node);
    const hi = edgeStart[node + 1]!;
    const wild = this.trie.wildStart(node);
    if (literal) {
      const e = this.trie.findEdge(edgeStart[node]!, wild, c);
      if (e >= 0) this.seed(edgeTarget[e]!);
    }
    for (let e = wild; e < hi; e++) {
      const tok = edgeToken[e]!;
      if (tok === TOKEN_ANY) this.seed(edgeTarget[e]!);
      else if (tok >= TOKEN_CLASS && setHas(this.classes.sets[tok - TOKEN_CLASS]!, c)) this.seed(edgeTarget[e]!);
    }
  }

  private seed(node: number): void {
    if (this.nSeeds === this.seeds.length) this.seeds = growTo(this.seeds, this.nSeeds + 1);
    this.seeds[this.nSeeds++] = node;
  }

  /** Epsilon closure of the seeds, deduplicated and sorted into scratch; returns the count. */
  private collect(): number {
    if (++this.epoch === 0xffffffff) {
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
        if (sp === stack.length) stack = this.stack = growTo(stack, sp + 1);
        stack[sp++] = node;
      }
    }
    while (sp > 0) {
      const node = stack[--sp]!;
      if (n === out.length) out = this.scratch = growTo(out, n + 1);
      out[n++] = node;
      // `*` sorts after literals and ANY: scan from the end.
      for (let k = edgeStart[node + 1]! - 1; k >= edgeStart[node]!; k--) {
        const tok = edgeToken[k]!;
        if (tok === TOKEN_STAR) {
          const t = edgeTarget[k]!;
          if (mark[t] !== e) {
            mark[t] = e;
            if (sp === stack.length) stack = this.stack = growTo(stack, sp + 1);
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
}
