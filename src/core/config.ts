/**
 * modprobe.d configuration and the kernel command line, as kmod 30 reads them
 * (libkmod-config.c: kmod_config_parse, kmod_config_parse_kcmdline; the line
 * reader is shared/util.c freadline_wrapped). Pure: callers pass file texts
 * in kmod's order (see sys/indexfs.ts).
 */
import { type LineWarning, parseSoftdepArgs, type SoftdepSpec } from './index/depmod.js';
import { normalizeAlias } from './glob.js';

/** One `options` entry: the name as written (after `-` to `_`) and the rest of the line. */
export interface OptionLine {
  module: string;
  options: string;
}

/** Where a configuration entry came from: a modprobe.d file and line, or the kernel command line (line 0). */
export interface ConfigSource {
  file: string;
  line: number;
}

/** The kernel command line as a ConfigSource's file (as warnings name it). */
export const CMDLINE_SOURCE = 'kernel command line';

/**
 * One configuration entry that was taken, in the order read, with its
 * source: what `hotplugd config` prints and `why` names. `value` is the rest
 * of the line as kmod keeps it (options, the command, softdep's words).
 */
export interface ConfigEntry extends ConfigSource {
  kind: 'alias' | 'blacklist' | 'options' | 'softdep' | 'install' | 'remove';
  name: string;
  value: string;
}

/** A source as people name it: FILE:LINE, or the file alone (the kernel command line). */
export function sourceText(s: ConfigSource): string {
  return s.line > 0 ? `${s.file}:${s.line}` : s.file;
}

/** An entry as its modprobe.d line (as modprobe -c prints it). */
export function entryLine(e: ConfigEntry): string {
  return e.value === '' ? `${e.kind} ${e.name}` : `${e.kind} ${e.name} ${e.value}`;
}

export interface ModprobeConfig {
  /** `alias PATTERN MODULE`, pattern normalized; fnmatch'ed whole by libkmod. */
  aliases: { pattern: string; module: string }[];
  blacklist: Set<string>;
  /** modprobe.d `options`, per name, in file order. */
  options: Map<string, string[]>;
  /** Every modprobe.d `options` entry in file order (a name may be an alias: see ModuleIndex.options). */
  optionLines: OptionLine[];
  /** `module.param` words of the kernel command line, in order; libkmod reads them after modprobe.d. */
  cmdlineOptionLines: OptionLine[];
  softdeps: Map<string, SoftdepSpec>;
  /** `install`/`remove` commands by module name pattern, in file order (first line per name); see core/install.ts. */
  commands: Map<string, { install?: string; remove?: string }>;
  /** Every entry taken, modprobe.d files then the kernel command line, with its source. */
  entries: ConfigEntry[];
  warnings: LineWarning[];
}

export function emptyConfig(): ModprobeConfig {
  return {
    aliases: [],
    blacklist: new Set(),
    options: new Map(),
    optionLines: [],
    cmdlineOptionLines: [],
    softdeps: new Map(),
    commands: new Map(),
    entries: [],
    warnings: [],
  };
}

function addOptions(cfg: ModprobeConfig, module: string, opts: string): void {
  // kmod_config_add_options: tabs become spaces, nothing else changes.
  const options = opts.replace(/\t/g, ' ');
  cfg.optionLines.push({ module, options });
  const list = cfg.options.get(module);
  if (list) list.push(options);
  else cfg.options.set(module, [options]);
}

/**
 * kmod's line reader (freadline_wrapped): a backslash before a newline joins
 * the next line with nothing in between; a backslash before any other
 * character stands for that character (`\\` is one backslash, so `\\` at
 * the end of a line does not continue it); a backslash at the end of the file
 * is read as the byte 0xff. Yields each logical line with the number of its
 * last physical line (kmod's warnings name that one), cut at a NUL as C
 * strings are. Nothing is trimmed and comments are the caller's business: a
 * continued comment swallows the next line.
 */
export function* kmodLines(text: string): Generator<[number, string]> {
  let lineNo = 0;
  let i = 0;
  const len = text.length;
  for (;;) {
    let buf = '';
    let runStart = i;
    let physical = 0;
    let eof = false;
    for (;;) {
      if (i >= len) {
        buf += text.slice(runStart, i);
        eof = true;
        break;
      }
      const c = text.charCodeAt(i);
      if (c === 0x0a) {
        buf += text.slice(runStart, i);
        i++;
        break;
      }
      if (c === 0x5c) {
        buf += text.slice(runStart, i);
        i++;
        if (i >= len) buf += '\xff';
        else if (text.charCodeAt(i) === 0x0a) physical++;
        else buf += text[i];
        i++;
        runStart = i;
        continue;
      }
      i++;
    }
    if (eof && buf === '') return;
    lineNo += physical + 1;
    const nul = buf.indexOf('\0');
    yield [lineNo, nul >= 0 ? buf.slice(0, nul) : buf];
    if (eof) return;
  }
}

/** strtok_r over one line with kmod's delimiters (space and tab). */
class Words {
  private pos = 0;
  constructor(private readonly s: string) {}

  /** Next word, or null. Consumes the one delimiter after it, as strtok_r does. */
  next(): string | null {
    const s = this.s;
    while (this.pos < s.length && (s[this.pos] === ' ' || s[this.pos] === '\t')) this.pos++;
    if (this.pos >= s.length) return null;
    const start = this.pos;
    while (this.pos < s.length && s[this.pos] !== ' ' && s[this.pos] !== '\t') this.pos++;
    const word = s.slice(start, this.pos);
    if (this.pos < s.length) this.pos++;
    return word;
  }

  /** The rest of the line as is (strtok_r with no delimiters), or null when nothing is left. */
  rest(): string | null {
    if (this.pos >= this.s.length) return null;
    const r = this.s.slice(this.pos);
    this.pos = this.s.length;
    return r;
  }
}

/** kmod's underscores(): `-` to `_` outside brackets; null (a syntax error) for a missing word or an unmatched bracket. */
function kmodName(word: string | null): string | null {
  return word === null ? null : normalizeAlias(word);
}

/**
 * Parse one modprobe.d file into cfg, as kmod_config_parse: words are split
 * on spaces and tabs; extra words after `alias A M` and `blacklist M` are
 * ignored; `options`/`softdep` take the rest of the line; a line that kmod
 * calls bad is reported with the number of its last physical line.
 */
export function parseModprobeConf(text: string, file: string, cfg: ModprobeConfig): void {
  for (const [n, line] of kmodLines(text)) {
    if (line === '' || line[0] === '#') continue;
    const words = new Words(line);
    const cmd = words.next();
    if (cmd === null) continue;
    const bad = (problem: string): void => {
      cfg.warnings.push({ file, line: n, problem });
    };
    const syntax = (): void => bad(`ignoring bad line starting with "${cmd}"`);
    switch (cmd) {
      case 'alias': {
        const pattern = kmodName(words.next());
        const module = kmodName(words.next());
        if (pattern === null || module === null) syntax();
        else {
          cfg.aliases.push({ pattern, module });
          cfg.entries.push({ kind: 'alias', name: pattern, value: module, file, line: n });
        }
        break;
      }
      case 'blacklist': {
        const module = kmodName(words.next());
        if (module === null) syntax();
        else {
          cfg.blacklist.add(module);
          cfg.entries.push({ kind: 'blacklist', name: module, value: '', file, line: n });
        }
        break;
      }
      case 'options': {
        const module = kmodName(words.next());
        const opts = words.rest();
        if (module === null || opts === null) syntax();
        else {
          addOptions(cfg, module, opts);
          cfg.entries.push({ kind: 'options', name: module, value: opts.replace(/\t/g, ' '), file, line: n });
        }
        break;
      }
      case 'softdep': {
        const module = kmodName(words.next());
        const rest = words.rest();
        if (module === null || rest === null) syntax();
        // The first softdep line for a module wins (kmod_module_get_softdeps stops at the first match).
        else {
          const words = rest.split(/[ \t\n\v\f\r]+/).filter((w) => w !== '');
          if (!cfg.softdeps.has(module)) cfg.softdeps.set(module, parseSoftdepArgs(words));
          cfg.entries.push({ kind: 'softdep', name: module, value: words.join(' '), file, line: n });
        }
        break;
      }
      case 'install':
      case 'remove': {
        // kmod: the module name ends at the first blank; the command is the
        // rest of the line verbatim (after that one blank), so quoting and
        // spacing reach /bin/sh as written.
        const m = /^\S+[\t ]+(\S+)[\t ](.*)$/.exec(line.trimStart());
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
        cfg.entries.push({ kind: cmd, name, value: m[2]!, file, line: n });
        // `remove` is kept but never used: a loader never unloads.
        break;
      }
      case 'include':
      case 'config':
        bad(`command "${cmd}" is deprecated and not parsed anymore`);
        break;
      default:
        syntax();
    }
  }
}

/** kmod reads at most this much of /proc/cmdline (KCMD_LINE_SIZE - 1). */
const CMDLINE_MAX = 4095;

const enum St {
  Ignore,
  Modname,
  Param,
  Value,
  Complete,
}

/**
 * The words of a kernel command line that kmod takes: `module.param[=value]`
 * as [module, param] (param keeps `=value` and any quotes in it), by
 * kmod_config_parse_kcmdline's state machine: a word is ignored when a quote
 * appears anywhere but at its very start or inside its value, when it has
 * whitespace inside quotes outside the value, when `=` comes before the first
 * `.`, or when its parameter part has a second `.`. A word quoted whole
 * (`"mod.p=a b"`, as GRUB passes it) is re-quoted as `mod` and `p="a b"`.
 */
export function kcmdlineParams(text: string): [string, string][] {
  const out: [string, string][] = [];
  const buf = text.length > CMDLINE_MAX ? text.slice(0, CMDLINE_MAX) : text;
  let state = St.Modname;
  let quoted = false;
  let quoteStart = -1;
  let modname = 0;
  let param = -1;
  let value = -1;
  for (let p = 0; p <= buf.length; p++) {
    const ch = p < buf.length ? buf[p]! : '\0';
    if (ch === '\0' && p < buf.length) break; // a C string ends at NUL
    switch (ch) {
      case '"':
        quoted = !quoted;
        // Only a quote as the word's first character may open it.
        if (quoted && state === St.Modname && p === modname) {
          quoteStart = p;
          modname = p + 1;
        } else if (state !== St.Value) {
          state = St.Ignore;
        }
        break;
      case '\0':
      case ' ':
      case '\n':
      case '\t':
      case '\v':
      case '\f':
      case '\r':
        if (quoted && state === St.Value) {
          // a space inside a quoted value
        } else if (quoted) {
          state = St.Ignore;
        } else if (state === St.Value || state === St.Param) {
          state = St.Complete;
        } else {
          modname = p + 1;
          state = St.Modname;
          quoteStart = -1;
          value = -1;
        }
        break;
      case '.':
        if (state === St.Modname) {
          param = p + 1;
          state = St.Param;
        } else if (state === St.Param) {
          state = St.Ignore;
        }
        break;
      case '=':
        if (state === St.Param) {
          value = p + 1;
          state = St.Value;
        } else if (state === St.Modname) {
          state = St.Ignore;
        }
        break;
    }
    if (state === St.Complete) {
      const mod = buf.slice(modname, param - 1);
      let par = buf.slice(param, p);
      if (quoteStart >= 0 && quoteStart < modname && value > param) {
        // "mod.p=a b" -> p="a b" (kmod moves the opening quote after the `=`).
        const eq = value - param;
        par = `${par.slice(0, eq)}"${par.slice(eq)}`;
      }
      out.push([mod, par]);
      modname = p + 1;
      state = St.Modname;
      quoteStart = -1;
      value = -1;
    }
  }
  return out;
}

/**
 * Kernel command line, as kcmdline_parse_result: `modprobe.blacklist=a,b`
 * adds each comma-separated word to the blacklist as written (kmod 30 does
 * not turn `-` into `_` there, so `modprobe.blacklist=snd-pcsp` matches no
 * module, in modprobe as here); every other `module.param` is an option for
 * that module (`-` to `_`), joined after modprobe.d's.
 */
export function parseCmdline(text: string, cfg: ModprobeConfig): void {
  for (const [mod, param] of kcmdlineParams(text)) {
    if (mod === 'modprobe' && param.startsWith('blacklist=')) {
      for (const m of param.slice('blacklist='.length).split(',')) {
        cfg.blacklist.add(m);
        cfg.entries.push({ kind: 'blacklist', name: m, value: '', file: CMDLINE_SOURCE, line: 0 });
      }
      continue;
    }
    const module = normalizeAlias(mod);
    if (module === null) {
      cfg.warnings.push({ file: CMDLINE_SOURCE, line: 0, problem: `ignoring bad option for module "${mod}"` });
      continue;
    }
    cfg.cmdlineOptionLines.push({ module, options: param.replace(/\t/g, ' ') });
    cfg.entries.push({ kind: 'options', name: module, value: param.replace(/\t/g, ' '), file: CMDLINE_SOURCE, line: 0 });
  }
}
