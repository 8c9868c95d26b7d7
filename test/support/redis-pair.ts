// Two replicas of one guard in this process (test/redis-revisions.test.ts, redis-outcomes.test.ts):
// each with its own client, store and replica id on one prefix and one Redis, so what crosses
// between them goes through Redis exactly as between processes. Their handlers share a stage: the
// turns they ran (with the revisions each heard), a gate per first input, and what a turn does
// once its gate opened. Call `useReplicaPair` inside a `describe`: it closes what it opened after
// each test and deletes the prefix's keys.

import {
  createGuard,
  type Drop,
  type Guard,
  type GuardOptions,
  type Outcome,
  type Revision,
  type Turn,
} from "session-guard";
import { redisStore } from "session-guard/redis";
import { afterEach } from "vitest";
import { type Deferred, deferred } from "./helpers.js";
import { type CLIENTS, cleanUp, eventually, type SuiteRedis, testPrefix } from "./redis-harness.js";

export const LEASE = 2_000;

export interface Msg {
  readonly text: string;
}

/** A `settled` event as a replica heard it. */
export interface Settled {
  readonly key: string;
  readonly id: string | undefined;
  readonly outcome: Outcome;
}

/** A turn as a replica's handler saw it. */
export interface Seen {
  readonly by: string;
  readonly fence: number;
  readonly inputs: string[];
  readonly revisions: Revision<Msg>[];
  readonly turn: Turn<Msg>;
}

/** What the handlers of both replicas share. */
export interface Stage {
  readonly turns: Seen[];
  /** A turn whose first input has this text waits for the gate before it ends. */
  readonly gates: Map<string, Deferred<void>>;
  /** A turn whose first input has this text runs this once its gate opened. */
  readonly after: Map<string, (turn: Turn<Msg>) => Promise<void> | void>;
}

export interface Replica {
  readonly name: string;
  readonly guard: Guard<Msg>;
  readonly errors: unknown[];
  readonly drops: Drop<Msg>[];
  readonly settled: Settled[];
}

type Kind = (typeof CLIENTS)[number];

export function useReplicaPair(kind: Kind, db: SuiteRedis) {
  const suite = { prefix: "" };
  const open: { close(): Promise<void> }[] = [];

  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await item.close();
    if (suite.prefix !== "") await cleanUp(db.admin, suite.prefix);
  });

  /** One replica: a client as users create it, its store and a guard whose handler follows `on`. */
  function replica(name: string, on: Stage, options: Partial<GuardOptions<Msg>>): Replica {
    const client = kind.create(db.target);
    const store = redisStore({ client, prefix: suite.prefix, lease: LEASE });
    const errors: unknown[] = [];
    const drops: Drop<Msg>[] = [];
    const settled: Settled[] = [];
    const guard = createGuard<Msg>({
      onError: (error) => void errors.push(error),
      onDrop: (drop) => void drops.push(drop),
      ...options,
      store,
      handler: async (turn) => {
        const seen: Seen = {
          by: name,
          fence: turn.fence,
          inputs: turn.inputs.map((m) => m.text),
          revisions: [],
          turn,
        };
        turn.onRevision((revision) => void seen.revisions.push(revision));
        on.turns.push(seen);
        const first = seen.inputs[0] as string;
        await on.gates.get(first)?.promise;
        await on.after.get(first)?.(turn);
        if (first.startsWith("fail")) throw new Error(`${first} failed`);
      },
    });
    guard.on("settled", ({ key, id, outcome }) => void settled.push({ key, id, outcome }));
    open.push({
      async close() {
        await guard.close({ timeout: 1_000 });
        await store.close();
        await kind.dispose(client);
      },
    });
    return { name, guard, errors, drops, settled };
  }

  return {
    /** The prefix of the current test (a fresh one per `pair()` or `fresh()`). */
    get prefix(): string {
      return suite.prefix;
    },
    /** A fresh prefix for a test that builds its own stores; `later` is closed after the test. */
    fresh(later?: { close(): Promise<void> }): string {
      suite.prefix = testPrefix();
      if (later !== undefined) open.push(later);
      return suite.prefix;
    },
    /** Close `item` after the test. */
    later(item: { close(): Promise<void> }): void {
      open.push(item);
    },
    /** Two replicas of one guard on a fresh prefix, and the stage their handlers share. */
    pair(options: Partial<GuardOptions<Msg>> = {}) {
      suite.prefix = testPrefix();
      const on: Stage = { turns: [], gates: new Map(), after: new Map() };
      return { on, a: replica("A", on, options), b: replica("B", on, options) };
    },
  };
}

/** Hold the turn whose first input is `text` until the returned gate opens. */
export function gate(on: Stage, text: string): Deferred<void> {
  const open = deferred();
  on.gates.set(text, open);
  return open;
}

/** Wait until the turn whose first input is `text` has started. */
export function started(on: Stage, text: string): Promise<void> {
  return eventually(() => on.turns.some((t) => t.inputs[0] === text), 5_000, `turn of ${text}`);
}

/** The turn whose first input is `text`. */
export function turnOf(on: Stage, text: string): Seen {
  return on.turns.find((t) => t.inputs[0] === text) as Seen;
}
