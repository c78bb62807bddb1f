/**
 * The code a running daemon would otherwise import only when it first needs
 * it, imported during start-up (Daemon awaits it before READY=1).
 *
 * The package's bundle is split at dynamic imports into content-named chunks
 * (xz-decompress-HASH.js, write-HASH.js, ...), and a package upgrade replaces
 * them while the old daemon still runs (until the postinst restarts it). Node
 * resolves every import() call again and checks that the file exists even
 * for a module it already loaded, so every lazy import in the daemon is a
 * core/lazy.ts loader, called once here and never import()ed again: after
 * READY=1 the daemon needs no file of its package but the module files it
 * loads. test/unit/preload.test.ts checks that every dynamic import the
 * daemon can reach is such a loader and is called here;
 * scripts/verify-package.sh exercises each path on a daemon whose files an
 * upgrade replaced.
 */
import { loadXz } from './core/decompress.js';
import { loadMetrics } from './metrics-feed.js';
import { loadMetaWriter } from './sys/index-cache.js';

export async function preloadDaemonCode(): Promise<void> {
  await Promise.all([
    loadXz(), // core/decompress.ts: the first .ko.xz
    // sys/index-cache.ts: the index cache write, and protobufjs inside it (core/index/meta/write.ts)
    loadMetaWriter().then((writer) => writer.loadProtobuf()),
    loadMetrics(), // metrics-feed.ts: the first metrics request (prom-client)
  ]);
}
