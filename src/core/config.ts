/**
 * modprobe.d configuration and the kernel command line, as kmod reads them.
 * Pure: callers pass file texts in kmod's order (see sys/indexfs.ts).
 */
import { type LineWarning, parseSoftdepArgs, type SoftdepSpec, underscores } from './depmod.js';
import { normalizeAlias } from './glob.js';

export interface ModprobeConfig {
  /** `alias PATTERN MODULE`, pattern normalized; fnmatch'ed whole by libkmod. */
  aliases: { pattern: string; module: string }[];
  blacklist: Set<string>;
  /** Options per module, command line first, then modprobe.d in file order (kmod's order). */
  options: Map<string, string[]>;
  softdeps: Map<string, SoftdepSpec>;
  /** `install`/`remove` commands by module name pattern, in file order (first line per name); see core/install.ts. */
  commands: Map<string, { install?: string; remove?: string }>;
  warnings: LineWarning[];
}

export function emptyConfig(): ModprobeConfig {
  return { aliases: [], blacklist: new Set(), options: new Map(), softdeps: new Map(), commands: new Map(), warnings: [] };
}

function addOptions(cfg: ModprobeConfig, module: string, opts: string): void {
  const list = cfg.options.get(module);
  if (list) list.push(opts);
  else cfg.options.set(module, [opts]);
}

/** Join continuation lines (a trailing `\`), drop comments; yields [lineNo, text]. */
function* logicalLines(text: string): Generator<[number, string]> {
  const physical = text.split('\n');
  let acc = '';
  let startLine = 0;
  for (let i = 0; i < physical.length; i++) {
    let line = physical[i]!;
    if (acc === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      acc += line.slice(0, -1) + ' ';
      continue;
    }
    line = acc + line;
    acc = '';
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    yield [startLine, t];
  }
  if (acc.trim() !== '') yield [startLine, acc.trim()];
}

/** Parse one modprobe.d file into cfg. */
export function parseModprobeConf(text: string, file: string, cfg: ModprobeConfig): void {
  for (const [n, line] of logicalLines(text)) {
    const parts = line.split(/\s+/);
    const cmd = parts[0]!;
    const bad = (problem: string): void => {
      cfg.warnings.push({ file, line: n, problem });
    };
    switch (cmd) {
      case 'alias': {
        if (parts.length !== 3) {
          bad('expected "alias PATTERN MODULE"');
          break;
        }
        const pattern = normalizeAlias(parts[1]!);
        if (pattern === null) bad('alias pattern has an unmatched bracket');
        else cfg.aliases.push({ pattern, module: underscores(parts[2]!) });
        break;
      }
      case 'blacklist':
        if (parts.length !== 2) bad('expected "blacklist MODULE"');
        else cfg.blacklist.add(underscores(parts[1]!));
        break;
      case 'options':
        if (parts.length < 3) bad('expected "options MODULE PARAM=VALUE ..."');
        else addOptions(cfg, underscores(parts[1]!), parts.slice(2).join(' '));
        break;
      case 'softdep': {
        const spec = parts.length >= 3 ? parseSoftdepArgs(parts.slice(2)) : null;
        if (spec === null) bad('expected "softdep MODULE pre: ... post: ..."');
        else if (!cfg.softdeps.has(underscores(parts[1]!))) cfg.softdeps.set(underscores(parts[1]!), spec);
        break;
      }
      case 'install':
      case 'remove': {
        // kmod: the module name ends at the first blank; the command is the
        // rest of the line verbatim (after that one blank), so quoting and
        // spacing reach /bin/sh as written.
        const m = /^\S+[\t ]+(\S+)[\t ](.*)$/.exec(line);
        if (m === null || m[2]!.trim() === '') {
          bad(`expected "${cmd} MODULE COMMAND..."`);
          break;
        }
        // The name is an fnmatch pattern (libkmod matches it against module
        // names); the first line that matches a module wins, so keep the first.
        // kmod's underscores(): `-` to `_` outside brackets; an unmatched bracket is a syntax error.
        const name = normalizeAlias(m[1]!);
        if (name === null) {
          bad(`"${cmd}" module pattern has an unmatched bracket`);
          break;
        }
        const entry = cfg.commands.get(name) ?? {};
        entry[cmd] ??= m[2]!;
        cfg.commands.set(name, entry);
        // `remove` is kept but never used: a loader never unloads.
        break;
      }
      default:
        bad(`unknown command "${cmd}"`);
    }
  }
}

/** Split a kernel command line into words, honouring double quotes as the kernel does. */
export function splitCmdline(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inQuote = false;
  let any = false;
  for (const ch of text) {
    if (ch === '"') {
      inQuote = !inQuote;
      any = true;
    } else if (!inQuote && /\s/.test(ch)) {
      if (any) words.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (any) words.push(cur);
  return words;
}

/**
 * Kernel command line: `modprobe.blacklist=a,b` and `module.param=value`
 * (a word whose first `.` comes before its first `=`), as kmod reads it.
 */
export function parseCmdline(text: string, cfg: ModprobeConfig): void {
  for (const word of splitCmdline(text)) {
    const eq = word.indexOf('=');
    const dot = word.indexOf('.');
    if (dot <= 0 || (eq >= 0 && eq < dot)) continue;
    const module = underscores(word.slice(0, dot));
    if (module === 'modprobe') {
      if (word.startsWith('modprobe.blacklist=')) {
        for (const m of word.slice('modprobe.blacklist='.length).split(',')) if (m !== '') cfg.blacklist.add(underscores(m));
      }
      continue;
    }
    const param = word.slice(dot + 1);
    if (param === '') continue;
    // Re-quote a value with spaces so that the kernel's own parser splits it right.
    const e = param.indexOf('=');
    const value = e >= 0 && /\s/.test(param.slice(e + 1)) ? `${param.slice(0, e)}="${param.slice(e + 1)}"` : param;
    addOptions(cfg, module, value);
  }
}
