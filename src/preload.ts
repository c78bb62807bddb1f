/**
 * The code a running daemon would otherwise import only when it first needs
 * it: imported during start-up (Daemon awaits it before READY=1).
 *
 * The package's bundle is split at dynamic imports into content-named chunks
 * (xz-decompress-HASH.js, write-HASH.js, ...), and a package upgrade replaces
 * them while the old daemon still runs (until the postinst restarts it): a
 * first .ko.xz, cache write or metrics request after the upgrade would import
 * a file that is gone. Loaded here, they are in memory before the daemon says
 * it is ready. NOT ENOUGH YET: Node's ESM resolver checks that the file exists
 * on every import() of a relative specifier, even of a module already loaded,
 * so each lazy call site must also keep the module it got (a memoised loader
 * shared with this list); scripts/verify-package.sh's upgrade check fails
 * until then (xz: "Cannot find module .../xz-decompress-HASH.js"). test/unit/preload.test.ts checks that every dynamic import the
 * daemon can reach is listed; scripts/verify-package.sh exercises each path on
 * a daemon whose files an upgrade replaced.
 */
export async function preloadDaemonCode(): Promise<void> {
  await Promise.all([
    import('xz-decompress'), // core/decompress.ts: the first .ko.xz
    import('./core/index/meta/write.js'), // sys/index-cache.ts: the index cache write
    import('protobufjs'), // core/index/meta/write.ts, inside that write
    import('./metrics.js'), // metrics-feed.ts: the first metrics request (prom-client)
    import('./sys/peercred.js'), // control/client.ts (static in the server; listed for completeness)
  ]);
}
