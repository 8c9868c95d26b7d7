// === Claims held by this process, which `close()` waits for
//
// G1 outranks shutdown speed: after `guard.close()` timed out, the guard keeps the lease of a turn
// whose handler still runs, renewing it until the handler settles. `store.close()` must not cut
// that short, so it closes the connections only once no claim is held here — or once a claim went
// a whole lease without a renewal (its guard gave up on it, or Redis is unreachable: it is gone
// anyway). The hot path pays a map write and delete per turn; renewal times are kept off it.

export class Holdings {
  /** Keys held here, by the token of the claim. */
  readonly #held = new Map<string, string>();
  /** When a claim held here was last renewed, by key. */
  readonly #renewedAt = new Map<string, number>();
  #idle: (() => void) | undefined;

  /** `key` is held here under `token`. */
  hold(key: string, token: string): void {
    this.#held.set(key, token);
  }

  /** The claim `token` of `key` was renewed. */
  renewed(key: string, token: string): void {
    if (this.#held.get(key) === token) this.#renewedAt.set(key, Date.now());
  }

  /** `key`'s claim `token` ended here (released, lost, abandoned, or its finish failed). */
  unhold(key: string, token: string): void {
    if (this.#held.get(key) !== token) return;
    this.#held.delete(key);
    this.#renewedAt.delete(key);
    if (this.#held.size === 0) this.#idle?.();
  }

  /** Resolves once no claim is held here, or every one left went `lease` ms without a renewal. */
  async idle(lease: number): Promise<void> {
    const since = Date.now();
    const prune = () => {
      const now = Date.now();
      for (const key of this.#held.keys()) {
        if (now - (this.#renewedAt.get(key) ?? since) > lease) this.#held.delete(key);
      }
    };
    prune();
    while (this.#held.size > 0) {
      await new Promise<void>((resolve) => {
        this.#idle = resolve;
        setTimeout(resolve, Math.max(1, Math.floor(lease / 3))).unref?.();
      });
      prune();
    }
    this.#idle = undefined;
  }
}
