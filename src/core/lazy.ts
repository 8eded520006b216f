/**
 * A module imported on first use and kept: the cloud SDKs and model client are large, and a command that never
 * calls them (`--help`, `runs`, `status`, the sandbox) should not pay for loading them at start-up.
 */
export function lazyModule<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => (loading ??= load());
}
