// === The contenders of measurement 1, and the two references every guard competes with
//
// `bare` and `sequentialize` place the guard among what users run today. Two more set the floor:
//
//   empty layer     `bot.use((ctx, next) => next())`: one middleware that does nothing. grammY
//                   allocates per layer, so this is the limit of any middleware, the guard's too.
//   hand-written    the smallest correct per-chat serializer: a Map of promise tails, the entry
//                   deleted once its tail settles, an error of one update kept from the next.
//                   Whatever a guard's bookkeeping costs beyond this is the price of its features.

import type { Context, NextFunction } from "grammy";
import { chatConstraint } from "./telegram.js";
import { type Contender, guardContender } from "./throughput.js";

export { BARE, SEQUENTIALIZE } from "./throughput.js";

export const EMPTY_LAYER: Contender = {
  name: "empty_layer",
  label: "bot.use((ctx, next) => next()): one empty layer",
  install(bot) {
    bot.use((_ctx, next) => next());
  },
};

/**
 * The smallest correct per-key serializer, a Map of promise tails: `serialize(key, work)` runs
 * `work` once every earlier work of `key` has settled, and the key is forgotten when idle. Used by
 * the hand-written contender here and by `core-throughput.ts`.
 */
export function promiseTails(): (key: string, work: () => Promise<void>) => Promise<void> {
  const tails = new Map<string, Promise<void>>();
  return (key, work) => {
    const previous = tails.get(key);
    // A tail never rejects (see `done`), so work that threw does not stop the next one.
    const run = previous === undefined ? work() : previous.then(() => work());
    const done = () => {
      if (tails.get(key) === tail) tails.delete(key);
    };
    const tail = run.then(done, done);
    tails.set(key, tail);
    return run;
  };
}

/** One key's updates, one after the other; the smallest state that is correct. */
function handWritten(): (ctx: Context, next: NextFunction) => Promise<void> {
  const serialize = promiseTails();
  return (ctx, next) => {
    const key = chatConstraint(ctx);
    return key === undefined ? next() : serialize(key, next);
  };
}

export const HAND_WRITTEN: Contender = {
  name: "hand_written",
  label: "hand-written serializer (a Map of promise tails)",
  install(bot) {
    bot.use(handWritten());
  },
};

export const GUARD = guardContender("guard", "sessionGuard({ awaitTurn: true })", {
  awaitTurn: true,
});
// The default configuration: turns run detached, so a window ends once the guard is idle.
export const GUARD_DETACHED = guardContender(
  "guard_detached",
  "sessionGuard() (detached turns, the default)",
  {},
);
export const GUARD_NO_DEDUPE = guardContender(
  "guard_no_dedupe",
  "sessionGuard({ awaitTurn: true, dedupe: false })",
  { awaitTurn: true, dedupe: false },
);
export const GUARD_QUEUE = guardContender(
  "guard_queue",
  'sessionGuard({ awaitTurn: true, mode: "queue" })',
  { awaitTurn: true, mode: "queue" },
);
// The flood queues 99 inputs per chat at once: with the default caps most would be dropped.
const UNCAPPED = {
  maxPending: Number.POSITIVE_INFINITY,
  maxPendingTotal: Number.POSITIVE_INFINITY,
};
export const FLOOD_QUEUE = guardContender(
  "guard_queue",
  'sessionGuard({ awaitTurn: true, mode: "queue" }), caps lifted',
  { awaitTurn: true, mode: "queue", ...UNCAPPED },
);
export const FLOOD_DETACHED = guardContender(
  "guard_detached",
  "sessionGuard() (detached, collect), caps lifted",
  UNCAPPED,
);
