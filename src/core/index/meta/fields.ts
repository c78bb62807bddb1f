/**
 * meta.pb's field numbers and enum values, by name (proto/meta.proto is the
 * schema; schema.ts is the same as data for protobufjs). Extensions get new
 * numbers, never reused ones.
 */

export const MetaField = {
  modules: 1,
  moduleDeviceMatches: 2,
  builtinDeviceMatches: 100,
  softdeps: 101,
  kernelRelease: 102,
  compiledDeviceMatches: 103,
  compiledBuiltinDeviceMatches: 104,
  byteClasses: 105,
  checksum: 106,
  modulesWithoutFile: 107,
  cache: 108,
  crc32: 109,
  moduleTable: 110,
} as const;

export const ModuleTableField = { names: 1, paths: 2, depStart: 3, deps: 4 } as const;

export const CacheRecordField = { format: 1, kernelRelease: 2, modulesDir: 3, statTimeNs: 4, sources: 5 } as const;

export const CacheSourceField = { path: 1, present: 2, size: 3, mtimeNs: 4, ino: 5, sha256: 6 } as const;

export const ModuleField = { name: 1, path: 2, depends: 3 } as const;

export const SoftdepField = { module: 1, pre: 2, post: 3 } as const;

export const RadixNodeField = { type: 1, literal: 2, startByte: 3, endByte: 4, children: 5, moduleIndex: 6 } as const;

export const NodeType = { LITERAL: 0, WILDCARD: 1, SINGLE_WILDCARD: 2, BYTE_RANGE: 3, ROOT: 4 } as const;

/** CompiledMatcher: fields 3..8 are the trie's arrays, as bytes; 10 is padding that aligns the next one. */
export const CompiledField = {
  format: 1,
  nodes: 2,
  edgeStart: 3,
  edgeToken: 4,
  edgeTarget: 5,
  isStar: 6,
  valueStart: 7,
  values: 8,
  patterns: 9,
  padding: 10,
  byteClass: 11,
} as const;

/** protobuf wire types. */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;
