/**
 * A loader that runs at most once and keeps its promise: for code imported on
 * first use. Node resolves every import() call again, and checks that the
 * file still exists even for a module it already loaded, so a daemon whose
 * package was upgraded under it (its content-named bundle chunks replaced)
 * must never call import() twice: each lazy import goes through one of these,
 * and src/preload.ts calls them all before the daemon is ready.
 */
export function lazy<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}
