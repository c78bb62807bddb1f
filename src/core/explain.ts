/**
 * What the index answers for a query, explained (match --json, the control
 * socket's `why`): every module the lookup gives, with its path, built-in and
 * blacklisted flags, options, dependency load order and the modprobe.d
 * install commands that would run instead of loading.
 */
import { type ModuleIndex } from './index/module-index.js';
import { installCommandFor, substituteCmdlineOpts } from './install.js';
import { loadOrder } from './plan.js';

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
      };
    }),
  };
}
