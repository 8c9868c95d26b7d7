// Simulate the death of a replica's store in a test.

/**
 * Stop the store's background work and close its connections at once, under whatever it holds
 * (`store.close()` would keep renewing the claims of running turns until they end).
 */
export async function killStore(store: unknown): Promise<void> {
  const impl = store as { takeover: { detach(): void }; port: { close(): Promise<void> } };
  impl.takeover.detach();
  await impl.port.close();
}
