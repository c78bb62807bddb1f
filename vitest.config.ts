import { defineConfig } from 'vitest/config';

// Three projects (README "Tests"):
// - unit: in-process tests of src/ (fakes for every system seam), mirroring
//   src/; files run in parallel; the edit-test loop: `npx vitest --project unit`;
// - integration: in-process too, but at scale — the whole Debian index through
//   meta.pb and back, every bit flip of a meta.pb, 100,000 fuzzed uevents,
//   --jobs properties on random graphs and on Debian's modules.dep;
// - system: real processes (the built CLI, rebuilt first when src/ is newer),
//   outside tools (gcc, kmod, systemd-analyze, ...), the real uevent socket and,
//   where the machine opts in, writes to its /sys. One file at a time: they
//   share the uevent socket and /sys.
export default defineConfig({
  test: {
    // No test writes the host's /var/cache/hotplugd: the commands' default
    // index cache directory is off unless a test names one (--cache-dir TMP).
    env: { HOTPLUGD_CACHE_DIR: '' },
    // The default report, then every skipped test with what it needs (a skip without a note fails the run).
    reporters: ['default', './test/support/skip-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'system', include: ['test/system/**/*.test.ts'], fileParallelism: false, globalSetup: ['test/support/build-once.ts'] },
      },
    ],
  },
});
