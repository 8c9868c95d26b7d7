// === Entries between Redis and this process
//
// An entry admitted here keeps its object (its `run` closure, its waiter) in this process while its
// text waits in Redis; when the text comes back to this process (in a batch, a drop), the object is
// used again. Text admitted by another replica is rebuilt by the guard (`StoreHost.revive`); when a
// reply drops such text, the replica that admitted it is told (`onDroppedElsewhere`, dropped.ts).

import type { StoreDrop, StoreEntry, StoreHost } from "session-guard";
import { parseEntry, type Stored } from "./format.js";

/** A drop of an entry this process did not admit (or no longer knows): its uid and reason. */
export interface UidDrop {
  readonly uid: string;
  readonly reason: StoreDrop<StoreEntry>["reason"];
}

/** A reply's value as text (node-redis answers strings, ioredis strings or buffers). */
export function text(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  return String(value);
}

/** A reply's value as an array (a nil reply is an empty list). */
export function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

const NONE: readonly never[] = Object.freeze([]);

export class LocalEntries<E extends StoreEntry> {
  /** Entries admitted here, by uid, while they wait in Redis. */
  readonly #local = new Map<string, { readonly entry: E; readonly key: string }>();
  host: StoreHost<E> | undefined;
  /** Called when an entry admitted here comes back from Redis (it no longer waits there). */
  onBack: (key: string, uid: string) => void = () => {};

  add(uid: string, entry: E, key: string): void {
    this.#local.set(uid, { entry, key });
  }

  has(uid: string): boolean {
    return this.#local.has(uid);
  }

  delete(uid: string): void {
    this.#local.delete(uid);
  }

  /**
   * Called once per reply with the drops of entries admitted elsewhere, so that their replicas
   * learn of them (a hint); entries of this replica among them are filtered out by the callee.
   */
  onDroppedElsewhere: (key: string, drops: readonly UidDrop[]) => void = () => {};

  /**
   * Forget the entry admitted here under `uid`, which another replica dropped: answers it, or
   * `undefined` when it is not waiting here any more (it came back, departed, or never was).
   */
  remove(uid: string): E | undefined {
    const local = this.#local.get(uid);
    if (local === undefined) return undefined;
    this.#local.delete(uid);
    return local.entry;
  }

  /** The entry a stored text stands for: the object admitted here, or one rebuilt by the guard. */
  entry(stored: string, key: string): E | undefined {
    return this.#entryOf(parseEntry(stored), key);
  }

  #entryOf(parsed: Stored, key: string): E | undefined {
    const local = this.#local.get(parsed.uid);
    if (local !== undefined) {
      this.#local.delete(parsed.uid);
      this.onBack(local.key, parsed.uid);
      // Another replica replaced its content while it waited (`guard.replace`): the new input.
      if (!parsed.lane && parsed.data !== local.entry.data) this.#refresh(local.entry, parsed, key);
      return local.entry;
    }
    // A lane of another process cannot run here (scripts drop them before they travel).
    const host = this.host;
    if (parsed.lane || host === undefined) return undefined;
    try {
      return host.revive(parsed as StoreEntry & { data: string });
    } catch (error) {
      host.error(
        new Error(`session-guard/redis: an input could not be decoded and was skipped`, {
          cause: error,
        }),
        key,
      );
      return undefined;
    }
  }

  /**
   * The object admitted here takes the input of its revised text (decoded by the guard), keeping
   * its identity (its waiter, its `onDrop`). The guard's entries carry the decoded input as
   * `input`; a text that cannot be decoded is reported and the object keeps its input.
   */
  #refresh(entry: E, parsed: Stored, key: string): void {
    const host = this.host;
    if (host === undefined) return;
    try {
      const revived = host.revive(parsed as StoreEntry & { data: string }) as E & {
        input?: unknown;
      };
      const target = entry as { input?: unknown; data?: string };
      if ("input" in revived) target.input = revived.input;
      target.data = parsed.data;
    } catch (error) {
      host.error(
        new Error(`session-guard/redis: a replaced input could not be decoded; it runs as it was`, {
          cause: error,
        }),
        key,
      );
    }
  }

  /**
   * A pending entry whose content a REPLACE answer swapped (it stays pending): the object admitted
   * here, updated through `apply`, or for an entry of another replica an object rebuilt from the
   * new text (its own replica updates its object when the entry comes back to it).
   */
  replaced(stored: string, key: string, apply: (entry: E) => void): E | undefined {
    const parsed = parseEntry(stored);
    const local = this.#local.get(parsed.uid);
    if (local !== undefined) {
      apply(local.entry);
      return local.entry;
    }
    const host = this.host;
    if (host === undefined) return undefined;
    try {
      return host.revive(parsed as StoreEntry & { data: string });
    } catch (error) {
      host.error(error, key);
      return undefined;
    }
  }

  /**
   * A WITHDRAW answer: the entry it removed. The replica that admitted it, if another one, is
   * told (reason `withdrawn`), so that its caller and its submit's `onDrop` learn of it.
   */
  withdrawn(stored: string, key: string): E | undefined {
    const parsed = parseEntry(stored);
    if (!parsed.lane && !this.#local.has(parsed.uid)) {
      this.onDroppedElsewhere(key, [{ uid: parsed.uid, reason: "withdrawn" }]);
    }
    return this.#entryOf(parsed, key);
  }

  /**
   * Entries as a script answers them. `dropped`: the script removed them without running them
   * (a stop), for that reason; the replicas that admitted them are told.
   */
  entries(stored: unknown, key: string, dropped?: UidDrop["reason"]): E[] {
    const out: E[] = [];
    let elsewhere: UidDrop[] | undefined;
    for (const item of list(stored)) {
      const parsed = parseEntry(text(item));
      if (dropped !== undefined && !this.#local.has(parsed.uid)) {
        (elsewhere ??= []).push({ uid: parsed.uid, reason: dropped });
      }
      const entry = this.#entryOf(parsed, key);
      if (entry !== undefined) out.push(entry);
    }
    if (elsewhere !== undefined) this.onDroppedElsewhere(key, elsewhere);
    return out;
  }

  /** Drops as scripts answer them: reason, entry, reason, entry… */
  drops(stored: unknown, key: string): StoreDrop<E>[] {
    const pairs = list(stored);
    if (pairs.length === 0) return NONE as never;
    const out: StoreDrop<E>[] = [];
    let elsewhere: UidDrop[] | undefined;
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const reason = text(pairs[i]) as StoreDrop<E>["reason"];
      const parsed = parseEntry(text(pairs[i + 1]));
      // Admitted by another replica (its own caller waits there), or by this one and ended here.
      if (!this.#local.has(parsed.uid)) (elsewhere ??= []).push({ uid: parsed.uid, reason });
      const entry = this.#entryOf(parsed, key);
      if (entry !== undefined) out.push({ entry, reason });
    }
    if (elsewhere !== undefined) this.onDroppedElsewhere(key, elsewhere);
    return out;
  }

  /** Entries admitted here left the queue for another replica's turn: their callers learn it. */
  depart(uids: Iterable<string>): void {
    const gone: E[] = [];
    for (const uid of uids) {
      const local = this.#local.get(uid);
      if (local === undefined) continue;
      this.#local.delete(uid);
      gone.push(local.entry);
    }
    if (gone.length > 0) this.host?.departed(gone);
  }

  /** Every entry admitted here that still waits runs on other replicas (this store detaches). */
  departAll(): void {
    this.depart([...this.#local.keys()]);
  }
}
