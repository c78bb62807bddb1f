/**
 * What the index answers for a query, explained (match --json, the control
 * socket's `why`): every module the lookup gives, with its path, built-in and
 * blacklisted flags, options, dependency load order and the modprobe.d
 * install commands that would run instead of loading.
 */
import { CMDLINE_SOURCE, type ConfigEntry } from './config.js';
import { type ModuleIndex } from './index/module-index.js';
import { configuredInstall, installCommandFor, substituteCmdlineOpts } from './install.js';
import { loadOrder } from './plan.js';

/**
 * The configuration lines behind an answer for module `name` found by
 * `query`, each with its file and line (or the kernel command line): its
 * blacklist entries, the options it gets (by name, or by the alias it was
 * found by), its softdep line, and the install line of each module of its
 * load order that runs a command instead of loading.
 */
export function configuredBy(index: ModuleIndex, name: string, query: string, installFor: readonly string[]): ConfigEntry[] {
  const entries = index.config.entries;
  const alias = index.aliasOf(name, query);
  const out = entries.filter(
    (e) => (e.kind === 'blacklist' && e.name === name) || (e.kind === 'options' && e.value !== '' && (e.name === name || e.name === alias)),
  );
  const soft = entries.find((e) => e.kind === 'softdep' && e.name === name);
  if (soft !== undefined && index.config.softdeps.has(name)) out.push(soft);
  for (const step of installFor) {
    const pattern = configuredInstall(index, step)?.pattern;
    const line = entries.find((e) => e.kind === 'install' && e.name === pattern);
    if (line !== undefined && !out.includes(line)) out.push(line);
  }
  // modprobe.d's lines first, then the kernel command line's (the order libkmod applies them in).
  return [...out.filter((e) => e.file !== CMDLINE_SOURCE), ...out.filter((e) => e.file === CMDLINE_SOURCE)];
}

export function describe(index: ModuleIndex, query: string): object {
  const r = index.lookup(query);
  return {
    modalias: query,
    source: r.source,
    modules: r.names.map((name) => {
      const m = index.moduleByName(name);
      const builtin = index.isBuiltin(name);
      const order = loadOrder(index, name);
      const commands: [string, string][] = [];
      for (const s of order) {
        const cmd = s.builtin ? undefined : installCommandFor(index, s.name);
        if (cmd !== undefined) commands.push([s.name, substituteCmdlineOpts(cmd, index.options(s.name, s.role === 'target' ? query : undefined))]);
      }
      return {
        name,
        path: builtin ? '' : (m?.path ?? null),
        builtin,
        blacklisted: index.isBlacklisted(name),
        options: index.options(name, query),
        loadOrder: order.map((s) => s.name),
        ...(commands.length > 0 ? { installCommands: Object.fromEntries(commands) } : {}),
        configuredBy: configuredBy(index, name, query, commands.map(([step]) => step)),
      };
    }),
  };
}
