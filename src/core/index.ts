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
 *   6. built-in modules' aliases (modules.builtin.modinfo),
 *   7. a built-in module's own name (modules.builtin).
 * The query is normalized first (alias_normalize); a query that libkmod
 * rejects (unmatched bracket) matches nothing.
 */
import { type ModprobeConfig, emptyConfig } from './config.js';
import { type LineWarning, type SoftdepSpec } from './depmod.js';
import { ClassTable, compilePattern, normalizeAlias, tokensMatch } from './glob.js';
import { Matcher, type PatternEntry } from './matcher.js';

export interface ModuleRecord {
  name: string;
  /** Path relative to the module directory; '' for a built-in; null when no index names a file for it. */
  path: string | null;
  builtin: boolean;
  /** Dependencies as module indices, in modules.dep order (nearest first). */
  deps: number[];
}

export type LookupSource = 'config' | 'name' | 'symbol' | 'command' | 'alias' | 'builtin-alias' | 'builtin-name' | 'none';

export interface LookupResult {
  /** Normalized query, or null when libkmod rejects it. */
  normalized: string | null;
  source: LookupSource;
  /** Module names, deterministic order (index order; config aliases in file order). */
  names: string[];
}

/** What every index source (depmod text, meta.pb) produces. */
export interface IndexParts {
  modules: ModuleRecord[];
  aliases: PatternEntry[];
  builtinAliases: PatternEntry[];
  classes: ClassTable;
  softdeps: Map<string, SoftdepSpec>;
  /** modules.symbols, read only when a `symbol:` query arrives. */
  loadSymbols?: () => PatternEntry[];
  warnings: LineWarning[];
  /** Where the index came from (a directory or a file), for messages. */
  source: string;
}

/** Alias lines → compiled entries; patterns libkmod would refuse are counted as warnings. */
export function compileAliases(
  lines: readonly { pattern: string; module: string }[],
  moduleIndex: (name: string) => number,
  classes: ClassTable,
  file: string,
  warnings: LineWarning[],
): PatternEntry[] {
  const out: PatternEntry[] = [];
  for (const { pattern, module } of lines) {
    const norm = normalizeAlias(pattern);
    if (norm === null) {
      warnings.push({ file, line: 0, problem: `alias "${pattern}" has an unmatched bracket (libkmod skips it too)` });
      continue;
    }
    const tokens = compilePattern(norm, classes);
    if (tokens !== null) out.push({ tokens, value: moduleIndex(module) });
  }
  return out;
}

export class ModuleIndex {
  readonly modules: readonly ModuleRecord[];
  readonly source: string;
  readonly warnings: readonly LineWarning[];
  readonly config: ModprobeConfig;
  readonly aliasCount: number;
  private readonly byName = new Map<string, number>();
  private readonly aliasMatcher: Matcher;
  private readonly builtinMatcher: Matcher;
  private symbolMatcher: Matcher | undefined;
  private readonly loadSymbols: (() => PatternEntry[]) | undefined;
  private readonly classes: ClassTable;
  private readonly configAliases: { tokens: string | null; module: string }[];
  private readonly softdepsFromIndex: Map<string, SoftdepSpec>;

  constructor(parts: IndexParts, config: ModprobeConfig = emptyConfig()) {
    this.modules = parts.modules;
    this.source = parts.source;
    this.warnings = [...parts.warnings, ...config.warnings];
    this.config = config;
    this.classes = parts.classes;
    parts.modules.forEach((m, i) => this.byName.set(m.name, i));
    this.aliasMatcher = Matcher.build(parts.aliases, parts.classes);
    this.builtinMatcher = Matcher.build(parts.builtinAliases, parts.classes, 256);
    this.aliasCount = parts.aliases.length + parts.builtinAliases.length;
    this.loadSymbols = parts.loadSymbols;
    this.configAliases = config.aliases.map((a) => ({ tokens: compilePattern(a.pattern, this.classes, false), module: a.module }));
    this.softdepsFromIndex = parts.softdeps;
  }

  moduleByName(name: string): ModuleRecord | undefined {
    const i = this.byName.get(name);
    return i === undefined ? undefined : this.modules[i];
  }

  indexOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** libkmod's lookup; see the file comment for the order of sources. */
  lookup(query: string): LookupResult {
    const normalized = normalizeAlias(query);
    if (normalized === null) return { normalized, source: 'none', names: [] };
    const names = (values: readonly number[]): string[] => values.map((v) => this.modules[v]!.name);

    const fromConfig: string[] = [];
    for (const a of this.configAliases) {
      if (a.tokens !== null && tokensMatch(a.tokens, normalized, this.classes) && !fromConfig.includes(a.module)) fromConfig.push(a.module);
    }
    if (fromConfig.length > 0) return { normalized, source: 'config', names: fromConfig };

    const own = this.moduleByName(normalized);
    if (own && !own.builtin && own.path !== null) return { normalized, source: 'name', names: [own.name] };

    if (normalized.startsWith('symbol:')) {
      const hits = this.symbols().match(normalized);
      if (hits.length > 0) return { normalized, source: 'symbol', names: names(hits) };
    }

    if (this.config.commands.has(normalized)) return { normalized, source: 'command', names: [normalized] };

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

  /** Module parameters as modprobe passes them: every options entry joined by spaces. */
  options(name: string): string {
    return (this.config.options.get(name) ?? []).join(' ');
  }

  isBlacklisted(name: string): boolean {
    return this.config.blacklist.has(name);
  }

  stats(): { modules: number; loadable: number; builtin: number; aliases: number; matcherBytes: number } {
    const loadable = this.modules.filter((m) => !m.builtin && m.path !== null).length;
    const builtin = this.modules.filter((m) => m.builtin).length;
    return {
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
      this.symbolMatcher = Matcher.build(this.loadSymbols ? this.loadSymbols() : [], this.classes, 256);
    }
    return this.symbolMatcher;
  }
}
