/**
 * Reading meta.pb's radix trees (RadixNode) straight into the trie builder:
 * no message objects for the nodes (a real kernel's tree has ~400,000).
 *
 * Normalization: depmod stores alias patterns with `-` turned into `_`
 * outside brackets (libkmod's alias_normalize), and lookups normalize the
 * query the same way. Monogon's tooling stores patterns as modules declare
 * them, so LITERAL bytes are normalized when read (BYTE_RANGE nodes are
 * bracket sets and stay as they are).
 */
import { HotplugError } from '../../../errors.js';
import { type ClassTable, DASH, newByteSet, TOKEN_ANY, TOKEN_CLASS, TOKEN_STAR, UNDERSCORE } from '../../glob.js';
import { type TrieBuilder } from '../../match/index.js';
import { NodeType, RadixNodeField, WIRE_LEN, WIRE_VARINT } from './fields.js';
import { corrupt, type Wire } from './wire.js';

export class RadixReader {
  /** BYTE_RANGE (lo << 8 | hi) -> class id. */
  private readonly classCache = new Map<number, number>();
  private readonly source: string;

  constructor(
    private readonly r: Wire,
    private readonly classes: ClassTable,
  ) {
    this.source = r.source;
  }

  /**
   * A RadixNode (bytes from `start` to `end`) and everything below it, under
   * trie node `at`. Iterative: nodes waiting to be read are kept as
   * (start, end, parent trie node, depth) quadruples, since a tree is as
   * deep as its longest pattern. The order nodes are read in does not
   * matter: the trie builder keeps children sorted and values are sorted when
   * it finishes.
   */
  radix(start: number, end: number, b: TrieBuilder, at: number, depth: number, nModules: number): void {
    const pending = [start, end, at, depth];
    while (pending.length > 0) {
      const d = pending.pop()!;
      const parent = pending.pop()!;
      const e = pending.pop()!;
      const s = pending.pop()!;
      this.radixNode(s, e, b, parent, d, nModules, pending);
    }
  }

  /**
   * One RadixNode below trie node `at`; its children are appended to
   * `pending`. Two passes over its fields, so that the node's own token is
   * known before its children and module indices, whatever the field order
   * on the wire; no allocation per node.
   */
  private radixNode(start: number, end: number, b: TrieBuilder, at: number, depth: number, nModules: number, pending: number[]): void {
    if (depth > 4096) throw corrupt(this.source, 'radix tree is deeper than 4096 nodes');
    const r = this.r;
    let type = 0;
    let litStart = -1;
    let litLen = 0;
    let lo = 0;
    let hi = 0;
    r.pos = start;
    while (r.pos < end) {
      r.next();
      const f = r.field;
      if (f === RadixNodeField.type) type = r.varintField('RadixNode.type');
      else if (f === RadixNodeField.literal) {
        r.expect(WIRE_LEN, 'RadixNode.literal');
        litLen = r.length();
        litStart = r.pos;
        r.pos += litLen;
      } else if (f === RadixNodeField.startByte) lo = r.varintField('RadixNode.start_byte');
      else if (f === RadixNodeField.endByte) hi = r.varintField('RadixNode.end_byte');
      else r.skipField();
    }
    if (r.pos !== end) throw corrupt(this.source, 'a radix node overruns its length');
    let node = at;
    switch (type) {
      case NodeType.ROOT:
        if (depth !== 0) throw corrupt(this.source, 'ROOT node below the root');
        break;
      case NodeType.LITERAL:
        if (litLen === 0) throw corrupt(this.source, 'empty LITERAL node');
        for (let i = litStart; i < litStart + litLen; i++) {
          const c = r.buf[i]!;
          node = b.child(node, c === DASH ? UNDERSCORE : c);
        }
        break;
      case NodeType.WILDCARD:
        node = b.child(node, TOKEN_STAR);
        break;
      case NodeType.SINGLE_WILDCARD:
        node = b.child(node, TOKEN_ANY);
        break;
      case NodeType.BYTE_RANGE: {
        if (lo > 255 || hi > 255 || lo > hi) throw corrupt(this.source, `BYTE_RANGE ${lo}-${hi} is not a byte range`);
        const key = (lo << 8) | hi;
        let id = this.classCache.get(key);
        if (id === undefined) {
          const set = newByteSet();
          for (let c = lo; c <= hi; c++) set[c >>> 5]! |= 1 << (c & 31);
          id = this.classes.intern(set);
          this.classCache.set(key, id);
        }
        node = b.child(node, TOKEN_CLASS + id);
        break;
      }
      default:
        throw corrupt(this.source, `unknown radix node type ${type}`);
    }
    r.pos = start;
    while (r.pos < end) {
      r.next();
      const f = r.field;
      const wt = r.wireType;
      if (f === RadixNodeField.children) {
        r.expect(WIRE_LEN, 'RadixNode.children');
        const len = r.length();
        const childStart = r.pos;
        pending.push(childStart, childStart + len, node, depth + 1);
        r.pos = childStart + len;
      } else if (f === RadixNodeField.moduleIndex) {
        const packedEnd = wt === WIRE_LEN ? r.length() + r.pos : -1;
        if (wt !== WIRE_LEN && wt !== WIRE_VARINT) throw corrupt(this.source, `bad wire type ${wt} for RadixNode.module_index`);
        do {
          const m = r.uint32();
          if (m >= nModules) {
            throw new HotplugError('E_INDEX_DEP_RANGE', `module_index ${m} is out of range (${nModules} modules)`, { file: this.source });
          }
          b.addValue(node, m);
        } while (r.pos < packedEnd);
      } else r.skipField();
    }
  }
}
