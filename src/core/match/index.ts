/**
 * The alias matcher: a trie of compiled glob patterns (trie.ts, built by
 * builder.ts) and the lookup that returns, for a modalias, every pattern's
 * value that libkmod would match (matcher.ts). Callers import from here.
 */
export { TrieBuilder } from './builder.js';
export { Matcher, type MatcherStats } from './matcher.js';
export type { CompiledTrie, PatternEntry } from './trie.js';
