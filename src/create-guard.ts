// === createGuard: the core guard, with the memory store as its default
//
// The core (`src/core/`) knows no store implementation; this is where the default one is chosen.

import { SessionGuard } from "./core/guard.js";
import type { GuardOptions } from "./core/options.js";
import { resolveOptions } from "./core/options.js";
import type { Guard } from "./core/types.js";
import { memoryStore } from "./stores/memory/store.js";

/**
 * Create a guard: one agent turn per key at a time, with pending input handled by `mode`.
 * Options are validated at once; a wrong value throws a `TypeError` saying what is expected.
 *
 * @example
 * ```ts
 * import { createGuard } from "session-guard";
 *
 * const guard = createGuard<string>({ mode: "collect" });
 * bus.on("message", (chatId: string, text: string, id: string) =>
 *   guard.submit(chatId, text, async (turn) => {
 *     const reply = await agent(turn.inputs.join("\n"), { signal: turn.signal });
 *     await send(chatId, reply);
 *   }, { id }),
 * );
 * ```
 */
export function createGuard<I = unknown>(options?: GuardOptions<I>): Guard<I> {
  return new SessionGuard<I>(resolveOptions(options, memoryStore));
}
