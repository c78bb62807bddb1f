/**
 * Byte classes: a partition of the byte alphabet such that bytes in one class
 * are accepted by exactly the same tokens of a trie. DFA transitions are
 * indexed by class, not byte, so a state costs `count` columns, not 256.
 */
import { type ClassTable, setHas, TOKEN_CLASS } from '../glob.js';
import { BYTE_ALPHABET } from './arrays.js';

export interface ByteClasses {
  /** Byte -> class id (0..count). */
  byteClass: Uint8Array;
  count: number;
}

/** Which tokens `edgeToken` uses: `used[token] === 1` (validateTrie finds the same on its pass over stored arrays). */
export function tokensUsed(edgeToken: Uint32Array, classes: ClassTable): Uint8Array {
  const used = new Uint8Array(TOKEN_CLASS + classes.sets.length);
  for (let e = 0; e < edgeToken.length; e++) used[edgeToken[e]!] = 1;
  return used;
}

/**
 * Every literal byte of the trie is its own class; other bytes are grouped
 * by their membership in each bracket set used. `used`: tokensUsed's answer.
 */
export function byteClassesOf(used: Uint8Array, classes: ClassTable): ByteClasses {
  const sets: Uint32Array[] = [];
  for (let i = 0; i < classes.sets.length; i++) if (used[TOKEN_CLASS + i] === 1) sets.push(classes.sets[i]!);
  const ids = new Map<string, number>();
  const byteClass = new Uint8Array(BYTE_ALPHABET);
  for (let c = 0; c < BYTE_ALPHABET; c++) {
    let sig = used[c] === 1 ? `L${c}` : 'S';
    if (used[c] !== 1) for (const s of sets) sig += setHas(s, c) ? '1' : '0';
    let id = ids.get(sig);
    if (id === undefined) {
      id = ids.size;
      ids.set(sig, id);
    }
    byteClass[c] = id;
  }
  return { byteClass, count: ids.size };
}

export function computeByteClasses(edgeToken: Uint32Array, classes: ClassTable): ByteClasses {
  return byteClassesOf(tokensUsed(edgeToken, classes), classes);
}
