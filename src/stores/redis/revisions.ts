// === Revisions: a pending input edited or deleted from any replica, a running turn told of it
//
// `replace` swaps a pending entry's JSON in place (REPLACE: same position, same uid, same header),
// from whichever replica the edit reached. The replica that admitted the entry keeps its object by
// uid (entries.ts): when the replace runs there, the object is updated at once (`apply`); when it
// runs elsewhere, the object takes the new input once its text comes back in a batch or a drop
// (the stored JSON then differs from the object's `data`, and the guard decodes it again).
//
// `reviseRunning` covers an input that already belongs to the batch of the turn holding the key
// (the `r:` list), at any replica: REVISE publishes a "v" hint to the holder's own channel,
//
//   "v|<token>|<id field>|<length>|<json><key>"     an edit: `length` is the JSON's length in
//                                                   UTF-16 code units (as JavaScript counts it)
//   "v|<token>|<id field>|-|<key>"                  a deletion
//
// The token, the id field ("=" + URI-encoded id) and the length never hold a "|"; the JSON may hold
// anything, so its length says where it ends, and the key, last, is the rest. (Ids, keys and the
// guard's JSON are well-formed UTF-16, so the text arrives as it was sent.) Older replicas ignore
// the hint, as every replica ignores a hint type it does not know.

import type { StoreEntry } from "session-guard";
import { illFormed } from "./control.js";
import { text } from "./entries.js";
import { idField, wellFormed } from "./format.js";
import { SCRIPTS } from "./lua/index.js";
import type { StoreParts } from "./parts.js";

/** What revisions need from the store. */
export interface RevisionStore<E extends StoreEntry> extends StoreParts<E> {
  readonly prefixLength: string;
}

/** Swap the content of the pending entry `id` of `key`; answers it, or `undefined`. */
export function replace<E extends StoreEntry>(
  store: RevisionStore<E>,
  key: string,
  id: string,
  data: string | undefined,
  apply: (entry: E) => void,
): Promise<E | undefined> {
  if (!wellFormed(key)) return Promise.reject(illFormed("key", key));
  if (!wellFormed(id)) return Promise.reject(illFormed("id", id));
  if (data === undefined) {
    return Promise.reject(
      new TypeError("redisStore: replace needs the new input as JSON text (data)."),
    );
  }
  const names = store.names(key);
  return store.scripts.call(SCRIPTS.replace, [names.queue], [idField(id), data], (reply) =>
    typeof reply === "string" || reply instanceof Uint8Array
      ? store.entries.replaced(text(reply), key, apply)
      : undefined,
  );
}

/** If `id` is in the batch of the turn holding `key`, tell its replica (a "v" hint): true. */
export function reviseRunning<E extends StoreEntry>(
  store: RevisionStore<E>,
  key: string,
  id: string,
  data: string | undefined,
): Promise<boolean> {
  if (!wellFormed(key)) return Promise.reject(illFormed("key", key));
  if (!wellFormed(id)) return Promise.reject(illFormed("id", id));
  const names = store.names(key);
  const tail = data === undefined ? `-|${key}` : `${data.length}|${data}${key}`;
  return store.scripts.call(
    SCRIPTS.revise,
    [names.lease, names.run],
    [idField(id), tail, store.prefixLength],
    (reply) => Number(reply) === 1,
  );
}

/** A "v" hint (see above), or `undefined` when it does not read as one. */
export function readRevisionHint(
  message: string,
): { key: string; token: string; id: string; data: string | undefined } | undefined {
  const a = message.indexOf("|", 2);
  const b = message.indexOf("|", a + 1);
  const c = message.indexOf("|", b + 1);
  if (a < 0 || b < 0 || c < 0 || message.charAt(a + 1) !== "=") return undefined;
  const token = message.slice(2, a);
  let id: string;
  try {
    id = decodeURIComponent(message.slice(a + 2, b));
  } catch {
    return undefined;
  }
  const length = message.slice(b + 1, c);
  if (length === "-") return { key: message.slice(c + 1), token, id, data: undefined };
  const n = Number(length);
  if (!Number.isInteger(n) || n < 0 || c + 1 + n > message.length) return undefined;
  return {
    key: message.slice(c + 1 + n),
    token,
    id,
    data: message.slice(c + 1, c + 1 + n),
  };
}
