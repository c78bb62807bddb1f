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

/** Every literal byte of the trie is its own class; other bytes are grouped by their membership in each bracket set used. */
export function computeByteClasses(edgeToken: Uint32Array, classes: ClassTable): ByteClasses {
  const literal = new Uint8Array(BYTE_ALPHABET);
  const usedSets = new Set<number>();
  for (let e = 0; e < edgeToken.length; e++) {
    const tok = edgeToken[e]!;
    if (tok < BYTE_ALPHABET) literal[tok] = 1;
    else if (tok >= TOKEN_CLASS) usedSets.add(tok - TOKEN_CLASS);
  }
  const sets = [...usedSets].sort((a, b) => a - b).map((i) => classes.sets[i]!);
  const ids = new Map<string, number>();
  const byteClass = new Uint8Array(BYTE_ALPHABET);
  for (let c = 0; c < BYTE_ALPHABET; c++) {
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
