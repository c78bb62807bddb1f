/**
 * The module index: every module (loadable or built-in), its dependencies, and
 * the alias matchers, answering "which modules serve this MODALIAS?" with
 * libkmod's rules (`kmod_module_new_from_lookup`): sources are tried in order
 * and the first one that yields anything wins —
 *   1. modprobe.d `alias` lines (fnmatch on the whole pattern),
 *   2. a loadable module's own name (modules.dep),
 *   3. `symbol:` lookups (modules.symbols),
 *   4. a module with an `install`/`remove` command in modprobe.d,
 *   5. modules.alias,
 *   6. built-in modules' aliases (modules.builtin.modinfo's `alias=`),
 *   7. a built-in module's own name (modules.builtin only: names that
 *      modules.builtin.modinfo lists for their parameters alone, such as
 *      apparmor or random, are no module and match nothing).
 * The query is normalized first (alias_normalize); a query that libkmod
 * rejects (unmatched bracket) matches nothing. A module found by a built-in
 * alias is built in (libkmod marks it so) even when modules.builtin does not
 * list it: isBuiltin.
 */
import { type ModprobeConfig, emptyConfig } from '../config.js';
import { type ClassTable, compilePattern, MAX_ALIAS_BYTES, normalizeAlias, tokensMatch } from '../glob.js';
import { Matcher } from '../match/index.js';
import { type LineWarning, type SoftdepSpec } from './depmod.js';

export interface ModuleRecord {
  name: string;
  /** Path relative to the module directory; '' for a built-in; null when no index names a file for it. */
  path: string | null;
  builtin: boolean;
  /** Dependencies as module indices, in modules.dep order (nearest first). */
  deps: number[];
}

/** Where a lookup's answer came from; 'too-long': the query is longer than MAX_ALIAS_BYTES and matches nothing. */
export type LookupSource = 'config' | 'name' | 'symbol' | 'command' | 'alias' | 'builtin-alias' | 'builtin-name' | 'none' | 'too-long';

export interface LookupResult {
  /** Normalized query, or null when it is refused (libkmod rejects it, or it is too long). */
  normalized: string | null;
  source: LookupSource;
  /** Module names, deterministic order (index order; config aliases in file order). */
  names: string[];
}

/** What every index source produces (assemble.ts for depmod's text and a .ko tree; meta/read.ts for meta.pb). */
export interface IndexParts {
  modules: ModuleRecord[];
  /** modules.alias patterns. */
  aliases: CompiledAliases;
  /** Built-in modules' aliases (consulted only when modules.alias has no match). */
  builtinAliases: CompiledAliases;
  classes: ClassTable;
  softdeps: Map<string, SoftdepSpec>;
  /** modules.symbols, read only when a `symbol:` query arrives. */
  loadSymbols?: () => CompiledAliases;
  warnings: LineWarning[];
  /** Where the index came from (a directory or a file), for messages. */
  source: string;
  /** Which kind of index `source` is (default 'depmod'). */
  kind?: IndexKind;
  /** Set when an automatically chosen meta.pb could not be used and depmod's files were read instead. */
  fallback?: IndexFallback;
}

/** 'cache': hotplugd's index cache (a meta.pb built from depmod's files, checked against them). */
export type IndexKind = 'meta.pb' | 'depmod' | 'cache';

export interface IndexFallback {
  /** The meta.pb not used. */
  file: string;
  /** Its error's code and message (without the file name). */
  code: string;
  problem: string;
}

export interface CompiledAliases {
  matcher: Matcher;
  /** Patterns inserted (after dropping those libkmod refuses). */
  count: number;
}

export class ModuleIndex {
  readonly modules: readonly ModuleRecord[];
  readonly source: string;
  readonly kind: IndexKind;
  readonly fallback: IndexFallback | undefined;
  readonly warnings: readonly LineWarning[];
  readonly config: ModprobeConfig;
  readonly aliasCount: number;
  private readonly byName = new Map<string, number>();
  private readonly noColonNames: boolean;
  private readonly aliasMatcher: Matcher;
  private readonly builtinMatcher: Matcher;
  private symbolMatcher: Matcher | undefined;
  private readonly loadSymbols: (() => CompiledAliases) | undefined;
  private readonly classes: ClassTable;
  private readonly configAliases: { tokens: string | null; module: string }[];
  private readonly softdepsFromIndex: Map<string, SoftdepSpec>;
  /** Modules without a file that only built-in aliases name (debugfs for fs-debugfs): built in, yet not a built-in name. */
  private readonly builtinByAlias = new Set<number>();

  constructor(parts: IndexParts, config: ModprobeConfig = emptyConfig()) {
    this.modules = parts.modules;
    this.source = parts.source;
    this.kind = parts.kind ?? 'depmod';
    this.fallback = parts.fallback;
    const warnings = [...parts.warnings, ...config.warnings];
    this.warnings = warnings;
    this.config = config;
    this.classes = parts.classes;
    parts.modules.forEach((m, i) => this.byName.set(m.name, i));
    this.noColonNames = parts.modules.every((m) => !m.name.includes(':')) && [...config.commands.keys()].every((n) => !n.includes(':'));
    this.aliasMatcher = parts.aliases.matcher;
    this.builtinMatcher = parts.builtinAliases.matcher;
    for (const { value } of this.builtinMatcher.entries()) {
      const m = parts.modules[value];
      if (m !== undefined && !m.builtin && m.path === null) this.builtinByAlias.add(value);
    }
    this.aliasCount = parts.aliases.count + parts.builtinAliases.count;
    this.loadSymbols = parts.loadSymbols;
    // Over-long modprobe.d patterns are skipped like modules.alias ones (and
    // brackets that fnmatch never sees closed, as in `[\]`, cost a pattern
    // its length squared to compile).
    const long = config.aliases.filter((a) => a.pattern.length > MAX_ALIAS_BYTES);
    if (long.length > 0) {
      warnings.push({ file: 'modprobe.d', line: 0, problem: `${long.length} alias(es) longer than ${MAX_ALIAS_BYTES} bytes skipped (the first for ${long[0]!.module})` });
    }
    this.configAliases = config.aliases
      .filter((a) => a.pattern.length <= MAX_ALIAS_BYTES)
      .map((a) => ({ tokens: compilePattern(a.pattern, this.classes, false), module: a.module }));
    this.softdepsFromIndex = parts.softdeps;
  }

  moduleByName(name: string): ModuleRecord | undefined {
    const i = this.byName.get(name);
    return i === undefined ? undefined : this.modules[i];
  }

  indexOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  /**
   * Whether a module is built into the kernel (nothing to load): modules.builtin
   * lists it, or it has no file and a built-in alias names it — libkmod marks
   * every module its built-in alias index answers with as built in
   * (kmod_lookup_alias_from_kernel_builtin_file), and only modules.builtin
   * makes a name built in by itself.
   */
  isBuiltin(name: string): boolean {
    const i = this.byName.get(name);
    return i !== undefined && (this.modules[i]!.builtin || this.builtinByAlias.has(i));
  }

  /** libkmod's lookup; see the file comment for the order of sources. */
  lookup(query: string): LookupResult {
    if (query.length > MAX_ALIAS_BYTES) return { normalized: null, source: 'too-long', names: [] };
    const normalized = normalizeAlias(query);
    if (normalized === null) return { normalized, source: 'none', names: [] };
    const names = (values: readonly number[]): string[] => values.map((v) => this.modules[v]!.name);

    const fromConfig: string[] = [];
    for (const a of this.configAliases) {
      if (a.tokens !== null && tokensMatch(a.tokens, normalized, this.classes) && !fromConfig.includes(a.module)) fromConfig.push(a.module);
    }
    if (fromConfig.length > 0) return { normalized, source: 'config', names: fromConfig };

    // Names never hold ':' in a real index, modaliases always do: skip the
    // hash lookups then (exact: checked against this index's names).
    const nameLike = !this.noColonNames || normalized.indexOf(':') < 0;
    const own = nameLike ? this.moduleByName(normalized) : undefined;
    if (own && !own.builtin && own.path !== null) return { normalized, source: 'name', names: [own.name] };

    if (normalized.startsWith('symbol:')) {
      const hits = this.symbols().match(normalized);
      if (hits.length > 0) return { normalized, source: 'symbol', names: names(hits) };
    }

    if (nameLike && this.config.commands.has(normalized)) return { normalized, source: 'command', names: [normalized] };

    const aliased = this.aliasMatcher.match(normalized);
    if (aliased.length > 0) return { normalized, source: 'alias', names: names(aliased) };

    const builtinAliased = this.builtinMatcher.match(normalized);
    if (builtinAliased.length > 0) return { normalized, source: 'builtin-alias', names: names(builtinAliased) };

    if (own && own.builtin) return { normalized, source: 'builtin-name', names: [own.name] };
    return { normalized, source: 'none', names: [] };
  }

  /** Softdeps for a module: modprobe.d first, then modules.softdep (first match wins, as in kmod). */
  softdeps(name: string): SoftdepSpec | undefined {
    return this.config.softdeps.get(name) ?? this.softdepsFromIndex.get(name);
  }

  /**
   * Module parameters as libkmod passes them (kmod_module_get_options): every
   * `options` entry whose name equals the module's name or the alias the
   * module was looked up by, modprobe.d in file order and then the kernel
   * command line (the kernel keeps the last value of a repeated parameter,
   * so the boot line wins), joined by spaces; empty entries are skipped.
   * `viaQuery` is the MODALIAS (or name) the module was found by; the alias
   * is the normalized query for modules.alias/modules.symbols matches and the
   * modprobe.d `alias` pattern for those (plain string compares, as libkmod).
   */
  options(name: string, viaQuery?: string): string {
    const alias = viaQuery === undefined ? null : this.aliasOf(name, viaQuery);
    const parts: string[] = [];
    for (const lines of [this.config.optionLines, this.config.cmdlineOptionLines]) {
      for (const l of lines) if ((l.module === name || l.module === alias) && l.options !== '') parts.push(l.options);
    }
    return parts.join(' ');
  }

  /** The alias libkmod records on a module found by `query` (kmod_module_new_from_alias), or null. */
  private aliasOf(name: string, query: string): string | null {
    const r = this.lookup(query);
    if (r.normalized === null || !r.names.includes(name)) return null;
    if (r.source === 'alias' || r.source === 'symbol') return r.normalized;
    if (r.source === 'config') {
      // The first modprobe.d alias line that matched for this module (configAliases follows config.aliases).
      const normalized = r.normalized;
      const i = this.configAliases.findIndex((a) => a.module === name && a.tokens !== null && tokensMatch(a.tokens, normalized, this.classes));
      return i >= 0 ? this.config.aliases[i]!.pattern : null;
    }
    return null;
  }

  isBlacklisted(name: string): boolean {
    return this.config.blacklist.has(name);
  }

  stats(): { kind: IndexKind; modules: number; loadable: number; builtin: number; aliases: number; matcherBytes: number } {
    const loadable = this.modules.filter((m) => !m.builtin && m.path !== null).length;
    const builtin = this.modules.filter((m, i) => m.builtin || this.builtinByAlias.has(i)).length;
    return {
      kind: this.kind,
      modules: this.modules.length,
      loadable,
      builtin,
      aliases: this.aliasCount,
      matcherBytes: this.aliasMatcher.stats().bytes + this.builtinMatcher.stats().bytes,
    };
  }

  matcherStats(): ReturnType<Matcher['stats']> {
    return this.aliasMatcher.stats();
  }

  private symbols(): Matcher {
    if (this.symbolMatcher === undefined) {
      this.symbolMatcher = this.loadSymbols ? this.loadSymbols().matcher : Matcher.build([], this.classes, 16);
    }
    return this.symbolMatcher;
  }
}
