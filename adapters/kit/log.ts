// === The default `onError` of an adapter: one log line that says what failed
//
// Three kinds of error reach it: a turn's (with its fence), an input's that never became a turn
// (the adapter's own error, a stop or notice that failed: key and input, no fence), and an
// incident of the guard or store (no key, no input: the error's own message says what failed, e.g.
// "The store failed during its sweep"). Each is one line, never "the turn for key """.

import type { ErrorInfo } from "session-guard";

/**
 * A console line per error, for adapter `platform`, naming inputs by `idOf` (as `noun`).
 *
 * @example
 * ```ts
 * errorLog("grammy", "updates", (ctx) => (ctx as Context).update?.update_id)
 * // session-guard/grammy: the turn for key "tg:42:7" (updates 12, 13) failed: Error: …
 * ```
 */
export function errorLog(
  platform: string,
  noun: string,
  idOf: (input: unknown) => unknown,
): (error: unknown, info: ErrorInfo<unknown>) => void {
  return (error, info) => {
    const ids: unknown[] = [];
    for (const input of info.inputs) {
      try {
        const id = idOf(input);
        if (id !== undefined) ids.push(id);
      } catch {
        // An input too malformed to name: it is counted out of the line, the error stays in.
      }
    }
    const named = noun === "" ? ids.join(", ") : `${noun} ${ids.join(", ")}`;
    const inputs = ids.length > 0 ? ` (${named})` : "";
    const what =
      info.fence !== undefined
        ? ` the turn for key "${info.key}"${inputs} failed:`
        : info.key !== ""
          ? ` an input for key "${info.key}"${inputs} failed:`
          : inputs !== ""
            ? ` an input${inputs} failed before it had a key:`
            : "";
    console.error(`session-guard/${platform}:${what}`, error);
  };
}
