/**
 * Reading meta.pb (Monogon-compatible; schema: proto/meta.proto) into index
 * parts, with the small wire reader (wire.ts), not protobufjs. A decoded index
 * answers exactly like the one it was written from: the radix trees
 * (radix.ts) or, when present on a little-endian machine, the compiled
 * matchers (compiled.ts) become the alias matchers; the module list (Module
 * messages, or the index cache's module table: module-table.ts) passes the
 * assembler's checks (paths, dependency range, no cycle). The checksum
 * (checksum.ts) is verified before anything is parsed. Anything malformed is
 * a HotplugError (E_INDEX_CORRUPT, E_INDEX_DEP_RANGE, E_PATH_ESCAPE,
 * E_INDEX_DEP_CYCLE). hotplugd's own index cache is checked less (decodeMeta's
 * `own`).
 */
import { endianness } from 'node:os';
import { HotplugError } from '../../../errors.js';
import { ClassTable } from '../../glob.js';
import { TrieBuilder } from '../../match/index.js';
import { checkDecodedModules } from '../assemble.js';
import { checkModulePath, checkNoCycles } from '../module-path.js';
import { type SoftdepSpec } from '../depmod.js';
import { type CompiledAliases, type IndexParts, type ModuleRecord } from '../module-index.js';
import { verifyChecksum } from './checksum.js';
import { type CompiledMatcherRead, internByteClasses, matcherFromCompiled, readCompiled } from './compiled.js';
import { MetaField, ModuleField, SoftdepField, WIRE_LEN } from './fields.js';
import { readModuleTable } from './module-table.js';
import { RadixReader } from './radix.js';
import { corrupt, Wire } from './wire.js';

export { appendChecksum } from './checksum.js';

const META_FIELDS: ReadonlySet<number> = new Set(Object.values(MetaField));

/** A Module message ending at `end`, as the record it becomes once checked (checkDecodedModules). */
function readModule(r: Wire, end: number): ModuleRecord & { path: string } {
  const m = { name: '', path: '', builtin: false, deps: [] as number[] };
  while (r.pos < end) {
    r.next();
    if (r.field === ModuleField.name) m.name = r.stringField('Module.name');
    else if (r.field === ModuleField.path) m.path = r.stringField('Module.path');
    else if (r.field === ModuleField.depends) r.uint32sField(m.deps);
    else r.skipField();
  }
  return m;
}

/**
 * The module list of an index cache (decodeMeta's `own`): built-ins marked,
 * dependencies in range, every path relative to the module directory
 * without `..` (E_PATH_ESCAPE: a cache never holds another path).
 */
function ownModules(list: (ModuleRecord & { path: string })[], source: string): ModuleRecord[] {
  if (list.length === 0) throw corrupt(source, 'the index cache lists no modules');
  for (let i = 0; i < list.length; i++) {
    const m = list[i]!;
    if (m.path !== '') checkModulePath(m.path, source);
    const deps = m.deps;
    for (let k = 0; k < deps.length; k++) {
      if (deps[k]! >= list.length) {
        throw new HotplugError('E_INDEX_DEP_RANGE', `module ${m.name} depends on index ${deps[k]}, out of range (${list.length} modules)`, { file: source });
      }
    }
    m.builtin = m.path === '';
  }
  return list;
}

/** A Softdep message ending at `end`. */
function readSoftdep(r: Wire, end: number): { module: string; pre: string[]; post: string[] } {
  const s = { module: '', pre: [] as string[], post: [] as string[] };
  while (r.pos < end) {
    r.next();
    if (r.field === SoftdepField.module) s.module = r.stringField('Softdep.module');
    else if (r.field === SoftdepField.pre) s.pre.push(r.stringField('Softdep.pre'));
    else if (r.field === SoftdepField.post) s.post.push(r.stringField('Softdep.post'));
    else r.skipField();
  }
  return s;
}

/**
 * Decode meta.pb bytes into index parts; throws HotplugError on anything
 * malformed. `checksumAt`: the caller has verified the checksum already
 * (verifyChecksum's answer), so it is not computed twice.
 *
 * `own`: the bytes are this hotplugd's own index cache, and the caller has
 * proved it so — its checksum holds (a CRC-32: any damage of up to 32
 * consecutive bits, and all but 2^-32 of other damage, is refused), its
 * format is this hotplugd's and its record matches the depmod files there
 * now (sys/index-cache.ts). Its compiled matchers are then arrays that
 * TrieBuilder laid out (sound by construction, as its tests check) and that
 * no byte of has changed since, so the pass over every node and edge that
 * guards against other writers' files and damage (validateTrie, ~7 ms at
 * every start here, ~25 times that emulated) is skipped; the O(1) shape
 * checks remain. Its module list is the one assembleIndex built and checked
 * from modules.dep (no dependency cycle), so that check is not made again
 * (ownModules): a cycle could only come from damage, which the CRC refuses.
 * Module paths are checked as a meta.pb's are (relative, no `..`: a cache
 * never holds another path, and one that does is refused whole), and
 * dependencies to be in range (cheap, and what every use of the list
 * indexes by). A meta.pb is
 * never decoded with `own`: anyone may have written it.
 */
export function decodeMeta(bytes: Uint8Array, source: string, checksumAt?: number, own = false): IndexParts & { kernelRelease: string } {
  const classes = new ClassTable();
  const r = new Wire(bytes, source);
  const radix = new RadixReader(r, classes);
  const list: (ModuleRecord & { path: string })[] = [];
  let table: (ModuleRecord & { path: string })[] | undefined;
  const trees: { field: number; pos: number; len: number }[] = [];
  const softdeps = new Map<string, SoftdepSpec>();
  let kernelRelease = '';
  let modules: ModuleRecord[];
  let compiledAliases: CompiledAliases | undefined;
  let compiledBuiltin: CompiledAliases | undefined;
  const builders = new Map<number, TrieBuilder>();
  const compiled = new Map<number, CompiledMatcherRead>();
  const classBytes: Uint8Array[] = [];
  const withoutFile: number[] = [];
  try {
    const verifiedAt = checksumAt ?? verifyChecksum(bytes, source);
    while (r.pos < r.len) {
      const tagAt = r.pos;
      r.next();
      const f = r.field;
      if (f === MetaField.checksum || f === MetaField.crc32) {
        // Only the verified one, where it was found: anything else is damage.
        if (tagAt !== verifiedAt) throw corrupt(source, 'a checksum field that is not the last field of the file');
        r.pos = r.len;
        continue;
      }
      if (f === MetaField.modulesWithoutFile) {
        r.uint32sField(withoutFile);
        continue;
      }
      if (!META_FIELDS.has(f) || f === MetaField.cache) {
        r.skipField();
        continue;
      }
      r.expect(WIRE_LEN, `Meta field ${f}`);
      if (f === MetaField.kernelRelease) kernelRelease = r.string();
      else if (f === MetaField.byteClasses) classBytes.push(r.bytes());
      else {
        const len = r.length();
        const end = r.pos + len;
        if (f === MetaField.compiledDeviceMatches || f === MetaField.compiledBuiltinDeviceMatches) compiled.set(f, readCompiled(r, end));
        else if (f === MetaField.modules) list.push(readModule(r, end));
        else if (f === MetaField.moduleTable) {
          if (table !== undefined) throw corrupt(source, 'two module tables');
          table = readModuleTable(r, end);
        }
        else if (f === MetaField.softdeps) {
          const s = readSoftdep(r, end);
          if (s.module !== '') softdeps.set(s.module, { pre: s.pre, post: s.post });
        } else trees.push({ field: f, pos: r.pos, len });
        r.pos = end;
      }
    }
    if (table !== undefined && list.length > 0) throw corrupt(source, 'both a module list and a module table');
    modules = own ? ownModules(table ?? list, source) : checkDecodedModules(table ?? list, source);
    for (const i of withoutFile) {
      const m = modules[i];
      if (m === undefined) throw corrupt(source, `modules_without_file names index ${i}, out of range (${modules.length} modules)`);
      m.path = null;
      m.builtin = false;
    }
    // Compiled matchers make the radix trees redundant (this byte order only).
    const useCompiled = compiled.has(MetaField.compiledDeviceMatches) && endianness() === 'LE';
    if (!useCompiled && compiled.size > 0 && trees.length === 0) throw corrupt(source, 'compiled matchers only, which a big-endian machine cannot use');
    for (const t of useCompiled ? [] : trees) {
      const builder = new TrieBuilder(t.len >> 2);
      radix.radix(t.pos, t.pos + t.len, builder, 0, 0, modules.length);
      builders.set(t.field, builder);
    }
    if (useCompiled) internByteClasses(classBytes, classes, source);
    const fromCompiled = (field: number, maxStates: number): CompiledAliases | undefined => {
      const c = compiled.get(field);
      return !useCompiled || c === undefined ? undefined : matcherFromCompiled(c, classes, modules.length, maxStates, source, own);
    };
    compiledAliases = fromCompiled(MetaField.compiledDeviceMatches, 8192);
    compiledBuiltin = fromCompiled(MetaField.compiledBuiltinDeviceMatches, 256);
  } catch (e) {
    if (e instanceof HotplugError) throw e;
    throw corrupt(source, `not a valid meta.pb (${(e as Error).message})`, e);
  }
  if (!own) checkNoCycles(modules, source);
  const finish = (field: number, maxStates: number): CompiledAliases => {
    const b = builders.get(field) ?? new TrieBuilder(16);
    const matcher = b.finish(classes, maxStates);
    return { matcher, count: matcher.patternCount() };
  };
  return {
    modules,
    aliases: compiledAliases ?? finish(MetaField.moduleDeviceMatches, 8192),
    builtinAliases: compiledBuiltin ?? finish(MetaField.builtinDeviceMatches, 256),
    classes,
    softdeps,
    warnings: [],
    source,
    kind: 'meta.pb',
    kernelRelease,
  };
}
