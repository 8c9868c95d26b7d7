// === Revisions from the platform: an edit replaces a pending input, a deletion withdraws it
//
// Every adapter turns the platform's edit and delete events into `guard.replace` and
// `guard.withdraw` on the id the input was submitted with. What they share is this: the call
// never throws into the framework (a store that is down is reported to `onError`, like any
// adapter error), and an edit of input that is not pending anymore simply changes nothing (the
// core tells a running turn through `turn.onRevision`).

import type { Guard, RevisionResult } from "session-guard";

/**
 * Replace (`input` given) or withdraw (`input` `undefined`) the input `id` of `key`; resolves with
 * what happened, or `undefined` once a failure was handed to `report`. Never rejects. `from`
 * derives the new content from the pending input where this process holds it (`replace`'s
 * `from`).
 *
 * @example
 * ```ts
 * await revise(guard, key, `slack:${channel}:${ts}`, edited, reportError);
 * ```
 */
export function revise<I>(
  guard: Guard<I>,
  key: string,
  id: string,
  input: I | undefined,
  report: (error: unknown, key: string, input?: I) => void,
  from?: (pending: I) => I,
): Promise<RevisionResult | undefined> {
  let result: Promise<RevisionResult>;
  try {
    result =
      input === undefined
        ? guard.withdraw(key, id)
        : guard.replace(key, id, input, from === undefined ? undefined : { from });
  } catch (error) {
    result = Promise.reject(error);
  }
  return result.catch((error: unknown) => {
    report(error, key, input);
    return undefined;
  });
}
