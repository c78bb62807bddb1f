/**
 * Builds the trie node by node: `child(node, token)` finds or creates an edge,
 * so index sources can insert patterns as token strings or walk their own
 * trees (the meta.pb decoder does). Children are sibling lists in typed
 * arrays, kept sorted by token; `layout` lays the nodes out in CSR order.
 *
 * Promises: the layout passes validateTrie (edges sorted and pointing
 * forward, values per node ascending and unique). builder.ts and matcher.ts import each other; each
 * uses the other only inside function bodies, so load order does not matter.
 */
import type { ClassTable } from '../glob.js';
import { TOKEN_STAR } from '../glob.js';
import { growTo } from './arrays.js';
import { Matcher } from './matcher.js';
import type { CompiledTrie } from './trie.js';

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
    // Sibling lists are kept sorted by token, so layout() needs no sort.
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
    return new Matcher(this.layout(), classes, maxStates);
  }

  /** The trie in CSR arrays, nodes renumbered in depth-first preorder. */
  layout(): CompiledTrie {
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
    let next = 0;
    let edges = 0;
    let n = 0;
    for (;;) {
      const id = next++;
      newId[n] = id;
      if (n !== 0 && token[n] === TOKEN_STAR) isStar[id] = 1;
      edgeStart[id] = edges;
      for (let c = firstChild[n]!; c !== 0; c = nextSibling[c]!) {
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
    const { valueStart, values } = this.layoutValues(newId, nodes);
    return { edgeStart, edgeToken, edgeTarget, isStar, valueStart, values };
  }

  /** Values per (renumbered) node, sorted and unique, in CSR arrays. */
  private layoutValues(newId: Uint32Array, nodes: number): { valueStart: Uint32Array; values: Uint32Array } {
    const valueNode = this.valueNode.map((n) => newId[n]!);
    const count = new Uint32Array(nodes + 1);
    for (const n of valueNode) count[n + 1]!++;
    for (let i = 0; i < nodes; i++) count[i + 1]! += count[i]!;
    const fill = count.slice(0, nodes);
    const raw = new Uint32Array(valueNode.length);
    for (let i = 0; i < valueNode.length; i++) raw[fill[valueNode[i]!]!++] = this.valueOf[i]!;
    const values = new Uint32Array(raw.length);
    let w = 0;
    const valueStart = new Uint32Array(nodes + 1);
    for (let n = 0; n < nodes; n++) {
      valueStart[n] = w;
      const lo = count[n]!;
      const hi = count[n + 1]!;
      if (hi === lo) continue;
      if (hi - lo > 1) raw.subarray(lo, hi).sort();
      for (let i = lo; i < hi; i++) if (i === lo || raw[i] !== raw[i - 1]) values[w++] = raw[i]!;
    }
    valueStart[nodes] = w;
    return { valueStart, values: values.slice(0, w) };
  }

  private grow(): void {
    const min = this.nodes + 1;
    this.parent = growTo(this.parent, min);
    this.token = growTo(this.token, min);
    this.firstChild = growTo(this.firstChild, min);
    this.nextSibling = growTo(this.nextSibling, min);
  }
}
