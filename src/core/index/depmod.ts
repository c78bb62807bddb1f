/**
 * Parsers for depmod's text output (modules.alias, modules.dep,
 * modules.builtin, modules.softdep, modules.builtin.modinfo). Pure functions of
 * the files' text (read as latin1); malformed lines are skipped and reported.
 */
import { isModuleFile, moduleNameFromPath } from '../module-file.js';
import { underscores } from '../glob.js';

export interface LineWarning {
  file: string;
  line: number;
  problem: string;
}

export interface AliasLine {
  pattern: string;
  module: string;
}

export interface SoftdepSpec {
  pre: string[];
  post: string[];
}

/** A line's content: trimmed, or null for a blank or `#` comment line. */
function content(text: string, start: number, end: number): string | null {
  const line = text.slice(start, end).trim();
  return line === '' || line.startsWith('#') ? null : line;
}

/**
 * The line loop of the small depmod files (modules.builtin, modules.softdep):
 * each content line (see `content`) with its 1-based number. modules.alias
 * and modules.dep, the bulk of an index and on the start-up path, keep their
 * loops inline: a callback per line there cost ~4 ms (modules.dep) of a cold
 * index load, measured in A/B runs of the bench's load-depmod child.
 */
function forEachContentLine(text: string, each: (line: string, n: number) => void): void {
  let n = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    const line = content(text, start, end);
    start = end + 1;
    if (line !== null) each(line, n);
  }
}

/**
 * `alias PATTERN MODULE` lines (modules.alias, modules.symbols), handed to
 * `each` without building per-line objects: this file is the bulk of an index.
 */
export function forEachAlias(
  text: string,
  file: string,
  warnings: LineWarning[],
  each: (pattern: string, module: string) => void,
): number {
  let count = 0;
  let n = 0;
  let start = 0;
  const len = text.length;
  while (start < len) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = len;
    n++;
    // Fast path for depmod's own output: "alias PATTERN MODULE", single spaces.
    if (text.startsWith('alias ', start)) {
      const a = text.indexOf(' ', start + 6);
      if (a > start + 6 && a + 1 < end) {
        const module = text.slice(a + 1, end);
        if (!/\s/.test(module)) {
          each(text.slice(start + 6, a), underscores(module));
          count++;
          start = end + 1;
          continue;
        }
      }
    }
    const line = content(text, start, end);
    start = end + 1;
    if (line === null) continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3 || parts[0] !== 'alias') {
      warnings.push({ file, line: n, problem: 'expected "alias PATTERN MODULE"' });
      continue;
    }
    each(parts[1]!, underscores(parts[2]!));
    count++;
  }
  return count;
}

export interface DepLine {
  /** Line number in modules.dep, for warnings. */
  line: number;
  name: string;
  path: string;
  deps: string[];
}

/** `path.ko: dep.ko dep2.ko` lines (modules.dep). Dependencies as module paths, in file order. */
export function parseDepFile(text: string, file: string, warnings: LineWarning[]): DepLine[] {
  const out: DepLine[] = [];
  let n = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    n++;
    const line = content(text, start, end);
    start = end + 1;
    if (line === null) continue;
    const colon = line.indexOf(':');
    const path = colon < 0 ? '' : line.slice(0, colon).trim();
    const name = colon < 0 ? null : moduleNameFromPath(path);
    if (name === null) {
      warnings.push({ file, line: n, problem: 'expected "MODULE.ko: DEPENDENCY.ko ..."' });
      continue;
    }
    const rest = line.slice(colon + 1).trim();
    const deps = rest === '' ? [] : rest.split(/[ \t]+/).filter((d) => d !== ''); // kmod splits on spaces and tabs
    if (!deps.every(isModuleFile)) {
      warnings.push({ file, line: n, problem: 'a dependency is not a module path' });
      continue;
    }
    out.push({ line: n, name, path, deps });
  }
  return out;
}

/** modules.builtin: one module path per line. */
export function parseBuiltinFile(text: string, file: string, warnings: LineWarning[]): string[] {
  const out: string[] = [];
  forEachContentLine(text, (line, n) => {
    const name = moduleNameFromPath(line);
    if (name === null) warnings.push({ file, line: n, problem: 'expected a module path ending in .ko' });
    else out.push(name);
  });
  return out;
}

/**
 * The words after `softdep MODULE`. Targets keep their spelling: they are
 * looked up like aliases, and lookup normalizes.
 */
export function parseSoftdepArgs(args: string[]): SoftdepSpec {
  const spec: SoftdepSpec = { pre: [], post: [] };
  let mode: 'pre' | 'post' | null = null;
  for (const a of args) {
    if (a === 'pre:') mode = 'pre';
    else if (a === 'post:') mode = 'post';
    // kmod ignores words before the first pre:/post: (Debian's cifs has
    // "softdep cifs gcm"): the line still counts, with nothing in it.
    else if (mode !== null) spec[mode].push(a);
  }
  return spec;
}

export function parseSoftdepFile(text: string, file: string, warnings: LineWarning[]): Map<string, SoftdepSpec> {
  const out = new Map<string, SoftdepSpec>();
  forEachContentLine(text, (line, n) => {
    const parts = line.split(/\s+/);
    const spec = parts[0] === 'softdep' && parts.length >= 3 ? parseSoftdepArgs(parts.slice(2)) : null;
    if (spec === null) {
      warnings.push({ file, line: n, problem: 'expected "softdep MODULE pre: ... post: ..."' });
      return;
    }
    const name = underscores(parts[1]!);
    if (!out.has(name)) out.set(name, spec);
  });
  return out;
}

/**
 * modules.builtin.modinfo: NUL-separated `module.key=value` records. Returns
 * the alias lines (depmod's modules.builtin.alias). The names it carries are
 * not built-in module names: it also lists the parameters of built-in code
 * that is no module (`apparmor.parmtype=...`, `random.parmtype=...`); only
 * modules.builtin says which names are built-in modules (libkmod).
 */
export function parseBuiltinModinfo(text: string, file: string, warnings: LineWarning[]): { aliases: AliasLine[] } {
  const aliases: AliasLine[] = [];
  let record = 0;
  for (const entry of text.split('\0')) {
    record++;
    if (entry === '') continue;
    const dot = entry.indexOf('.');
    const eq = entry.indexOf('=');
    if (dot <= 0 || eq < dot) {
      warnings.push({ file, line: record, problem: 'expected "module.key=value"' });
      continue;
    }
    if (entry.slice(dot + 1, eq) === 'alias') aliases.push({ pattern: entry.slice(eq + 1), module: underscores(entry.slice(0, dot)) });
  }
  return { aliases };
}
