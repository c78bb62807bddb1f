/**
 * Coverage of a VM's devices, shared by both end-to-end guests: what libkmod
 * names for each MODALIAS (answers as "modalias<TAB>module module ..." lines,
 * from the host's harness or the guest's `modprobe -R`) against what is in
 * /proc/modules, with the exceptions each test explains (blacklisted, broken
 * on purpose, disabled by an install command, declined by the driver).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type Rec = Record<string, unknown>;

export interface CoverageInput {
  answers: string[];
  moduleRoot: string; // ROOT with lib/modules/ABI (the host's copy of the guest's tree)
  abi: string;
  loaded: Set<string>; // /proc/modules
  moduleRecs: Rec[]; // the daemon's `module` records
  /** A module whose .ko is missing on purpose: modules needing it are not expected. */
  broken?: string;
  /** Modules not expected although libkmod names them (blacklisted, install commands). */
  exempt: Set<string>;
}

export interface Coverage {
  expected: Set<string>;
  builtin: Set<string>;
  /** Expected modules with their dependencies (modprobe --show-depends). */
  closure: Set<string>;
  brokenBy: Set<string>;
  /** Drivers that answered ENODEV, and modules skipped because of one. */
  declined: Set<string>;
  missing: string[];
  /** Loaded but not in the closure. */
  extra: string[];
}

export function coverage(o: CoverageInput): Coverage {
  const modDir = join(o.moduleRoot, 'lib/modules', o.abi);
  const expected = new Set<string>();
  for (const line of o.answers) for (const n of (line.split('\t')[1] ?? '').split(' ')) if (n !== '') expected.add(n.replace(/-/g, '_'));
  const builtin = new Set(
    readFileSync(join(modDir, 'modules.builtin'), 'latin1')
      .split('\n')
      .map((p) => p.replace(/^.*\//, '').replace(/\.ko$/, '').replace(/-/g, '_'))
      .filter(Boolean),
  );
  const depsOf = (m: string): string[] => {
    try {
      return execFileSync('modprobe', ['-d', o.moduleRoot, '-S', o.abi, '--show-depends', m], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .split('\n')
        .map((l) => /insmod \S*\/([^/ ]+)\.ko/.exec(l)?.[1]?.replace(/-/g, '_'))
        .filter((x): x is string => x !== undefined);
    } catch {
      return [m];
    }
  };
  const closure = new Set<string>();
  const brokenBy = new Set<string>();
  for (const m of expected) {
    const deps = depsOf(m);
    for (const d of deps) closure.add(d);
    if (o.broken !== undefined && deps.includes(o.broken)) brokenBy.add(m);
  }
  // Drivers that looked and said "not my device": the kernel's answer, not hotplugd's.
  const declined = new Set(o.moduleRecs.filter((r) => r.result === 'failed' && r.code === 'ENODEV').map((r) => r.module as string));
  // ...and modules skipped because such a driver is their dependency.
  for (const r of o.moduleRecs) if (r.result === 'skipped' && declined.has(r.failedDependency as string)) declined.add(r.module as string);
  const missing = [...expected]
    .filter((m) => !o.loaded.has(m) && !builtin.has(m) && !o.exempt.has(m) && !brokenBy.has(m) && !declined.has(m))
    .sort();
  const extra = [...o.loaded].filter((m) => !closure.has(m)).sort();
  return { expected, builtin, closure, brokenBy, declined, missing, extra };
}
