/**
 * A vitest reporter beside the default one: after the run it lists every
 * skipped test with what it needs (the note given to `ctx.skip(cond, note)`),
 * so a skip is never silent. A test skipped without a note fails the run:
 * every skip must say what would make it run.
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export default class SkipReporter implements Reporter {
  /** A run narrowed by name (-t) skips the rest on purpose: then skips are listed only when they carry a note. */
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.filtered = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const lines: string[] = [];
    let unexplained = 0;
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r.state !== 'skipped' || (this.filtered && (r.note === undefined || r.note === ''))) continue;
        if (r.note === undefined || r.note === '') unexplained++;
        lines.push(`  ${m.moduleId.replace(`${process.cwd()}/`, '')} > ${t.fullName}: ${r.note ?? 'SKIPPED WITHOUT A REASON'}`);
      }
    }
    if (lines.length === 0) return;
    process.stdout.write(`\nSkipped tests and what they need:\n${lines.join('\n')}\n`);
    if (unexplained > 0) {
      process.stdout.write(`${unexplained} test(s) skipped without saying what they need: give ctx.skip(condition, note) a note\n`);
      process.exitCode = 1;
    }
  }
}
