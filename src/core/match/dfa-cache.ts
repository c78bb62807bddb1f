/**
 * The lazily built DFA (RE2's approach): each state is a sorted set of trie
 * nodes, interned once, with a transition row indexed by byte class (-1: not
 * computed yet; 0 is the empty, dead state). Only sets that are large or
 * recur are admitted (see `admit`), so one-off sets of a single device's
 * patterns never fill it.
 *
 * Promises: memory is bounded. The owner asks `full()` at the start of each
 * lookup and calls `reset()` when it says so: past `maxStates` states or
 * MAX_POOL_NODES node ids (a state's set can be as long as a pattern, so a
 * count of states alone would not bound memory). A lookup may run past the
 * bound before the next reset; the arrays grow freely until then.
 */
import { EMPTY, growTo, sortUnique } from './arrays.js';
import type { Trie } from './trie.js';

/** The cache is also reset when its state sets hold this many node ids (16 MB). */
const MAX_POOL_NODES = 1 << 22;
/** Admission filter slots (a power of two). */
const SEEN_SLOTS = 1 << 16;

export class DfaCache {
  /** Byte classes: the width of a transition row. */
  readonly width: number;
  readonly maxStates: number;
  /** (state * width + class) -> next state, -1 unknown. */
  trans: Int32Array;
  /** State s is setPool[setStart[s] .. + setLen[s]). */
  setPool = new Uint32Array(1024);
  setStart: number[] = [];
  setLen: number[] = [];
  /** (literal node * width + class) -> state of the group opened there. */
  injected = new Map<number, number>();
  private accepts: (readonly number[] | undefined)[] = [];
  /** Open-addressing table: set hash -> state id (-1 empty). */
  private stateTable = new Int32Array(1 << 14).fill(-1);
  private stateHash: number[] = [];
  private poolUsed = 0;
  private readonly seen = new Uint8Array(SEEN_SLOTS);
  private seenMarks = 0;

  constructor(
    private readonly trie: Trie,
    width: number,
    maxStates: number,
  ) {
    this.width = width;
    this.maxStates = Math.max(16, maxStates);
    this.trans = new Int32Array(64 * width).fill(-1);
    this.reset();
  }

  get stateCount(): number {
    return this.setLen.length;
  }

  get byteLength(): number {
    return this.trans.byteLength + this.setPool.byteLength;
  }

  full(): boolean {
    return this.setLen.length >= this.maxStates || this.poolUsed > MAX_POOL_NODES;
  }

  /** Drops every state but the dead one (0). */
  reset(): void {
    this.setStart = [];
    this.setLen = [];
    this.accepts = [];
    this.stateTable.fill(-1);
    this.stateHash = [];
    this.injected = new Map();
    this.poolUsed = 0;
    if (this.setPool.length > MAX_POOL_NODES) this.setPool = new Uint32Array(1024);
    this.trans.fill(-1);
    this.intern(new Uint32Array(0)); // state 0: dead
  }

  /**
   * Admission filter (TinyLFU's doorkeeper): true when a set with this hash
   * was seen recently. The filter is cleared once a quarter of it is marked,
   * so "recently" is a window of some 16,000 distinct sets: sets that recur
   * within it (the shared groups) are cached, one-offs are not, however many
   * times a huge corpus is cycled. False positives only cost a cache slot.
   */
  admit(h: number): boolean {
    const i = h & (SEEN_SLOTS - 1);
    if (this.seen[i] === 1) return true;
    this.seen[i] = 1;
    if (++this.seenMarks > SEEN_SLOTS >> 2) {
      this.seen.fill(0);
      this.seenMarks = 0;
    }
    return false;
  }

  /** Find or add the state for a sorted node set. */
  intern(set: Uint32Array, h = hashSet(set)): number {
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
    if (this.poolUsed + n > this.setPool.length) this.setPool = growTo(this.setPool, this.poolUsed + n);
    this.setPool.set(set, this.poolUsed);
    this.setStart.push(this.poolUsed);
    this.setLen.push(n);
    this.stateHash.push(h);
    this.accepts.push(undefined);
    this.poolUsed += n;
    table[slot] = id;
    if ((id + 1) * 2 > table.length) this.rehash();
    const need = (id + 1) * this.width;
    if (need > this.trans.length) {
      // Not growTo: rows are Int32 filled with -1 ("unknown"), and sized
      // towards maxStates rather than doubled past it.
      const grown = new Int32Array(Math.max(need, Math.min(this.maxStates, (id + 1) * 2) * this.width)).fill(-1);
      grown.set(this.trans);
      this.trans = grown;
    }
    return id;
  }

  /** Values accepted in state s (computed once per state), ascending. */
  accept(s: number): readonly number[] {
    const known = this.accepts[s];
    if (known !== undefined) return known;
    const from = this.setStart[s]!;
    const len = this.setLen[s]!;
    const out: number[] = [];
    for (let k = 0; k < len; k++) this.trie.appendValues(this.setPool[from + k]!, out);
    const result = out.length === 0 ? EMPTY : sortUnique(out);
    this.accepts[s] = result;
    return result;
  }

  private sameSet(id: number, set: Uint32Array): boolean {
    const from = this.setStart[id]!;
    for (let i = 0; i < set.length; i++) if (this.setPool[from + i] !== set[i]) return false;
    return true;
  }

  private rehash(): void {
    const table = new Int32Array(this.stateTable.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let id = 0; id < this.stateHash.length; id++) {
      let slot = this.stateHash[id]! & mask;
      while (table[slot]! >= 0) slot = (slot + 1) & mask;
      table[slot] = id;
    }
    this.stateTable = table;
  }
}

/** FNV-1a over a node set, folded to a small integer (a Smi: V8 stores it unboxed). */
export function hashSet(set: Uint32Array): number {
  let h = 0x811c9dc5 ^ set.length;
  for (let i = 0; i < set.length; i++) h = Math.imul(h ^ set[i]!, 0x01000193);
  return (h ^ (h >>> 16)) & 0x3fffffff;
}
