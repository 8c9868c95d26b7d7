// One bot replica in a process of its own, for the multi-process Redis tests. The parent forks it
// with `node --import tsx`, routes inputs to it over IPC and reads what it did from the events it
// sends back. Configuration comes from the environment:
//
//   SG_TARGET  JSON { url } or { socket }     SG_CLIENT  "node-redis" | "ioredis"
//   SG_PREFIX  key prefix                      SG_LEASE   lease in ms
//   SG_MODE    busy mode (default collect)
//
// Every input is { id, work }: its turn sleeps `work` ms (that of its newest input), stopping
// early when the turn's signal aborts. Each turn reports its start and end with wall-clock times
// taken here (one machine, one clock), which is what the parent's overlap oracle compares.

import { Redis } from "ioredis";
import { createClient } from "redis";
import { createGuard, type Mode, type Turn, TurnAbortedError } from "session-guard";
import { redisStore } from "session-guard/redis";

interface Input {
  readonly id: string;
  readonly work: number;
  /** Carried by the turn as soon as it starts (`turn.carry`). */
  readonly carry?: string;
}

export type ToReplica =
  | { type: "submit"; key: string; id: string; work: number; local: boolean; carry?: string }
  | { type: "stop"; key: string }
  | { type: "close"; timeout?: number };

export type FromReplica =
  | { type: "ready"; replica: string; pid: number }
  | { type: "admitted"; id: string; outcome: string }
  | { type: "refused"; id: string; error: string }
  | {
      type: "start";
      key: string;
      fence: number;
      ids: string[];
      at: number;
      /** Redis' count at the start (see `order`): comparable across replicas, unlike `at`. */
      order: number | undefined;
      pid: number;
      local: boolean;
      /** What the turn was handed (`turn.carried`): value, fence, reason. */
      carried: [unknown, number, string][];
    }
  | {
      type: "end";
      key: string;
      fence: number;
      ids: string[];
      at: number;
      /** Redis' count at the end, before the turn releases its key (see `order`). */
      order: number | undefined;
      pid: number;
      aborted: string | null;
      stale: boolean;
    }
  | { type: "drop"; key: string; id: string; reason: string }
  | { type: "error"; name: string; message: string }
  | { type: "closed"; at: number };

const send = (message: FromReplica) => process.send?.(message);
const now = () => performance.timeOrigin + performance.now();

/**
 * One count in Redis that every replica increments at a turn's start (after its claim) and at its
 * end (before its release): an order of events across processes that no clock skew can blur — two
 * processes' `performance.timeOrigin` may disagree by milliseconds on a loaded machine. Best effort:
 * `undefined` when Redis does not answer (tests that take it down).
 */
let counter: Promise<{ sendCommand(args: string[]): Promise<unknown> }> | undefined;
const order = (): Promise<number | undefined> => {
  const key = `order:${process.env.SG_PREFIX}`;
  if (client instanceof Redis) return client.call("INCR", key).then(Number, () => undefined);
  // The store's node-redis client is never connected itself (the store duplicates it): a connection
  // of its own for the count.
  counter ??= (async () => {
    const own = client.duplicate();
    own.on("error", () => {});
    await own.connect();
    return own;
  })();
  return counter.then((own) => own.sendCommand(["INCR", key])).then(Number, () => undefined);
};

const target = JSON.parse(process.env.SG_TARGET as string) as { url?: string; socket?: string };
const kind = process.env.SG_CLIENT as string;
const client =
  kind === "ioredis"
    ? target.url !== undefined
      ? new Redis(target.url)
      : new Redis({ path: target.socket as string })
    : target.url !== undefined
      ? createClient({ url: target.url })
      : createClient({ socket: { path: target.socket as string, tls: false } });

const store = redisStore({
  client,
  prefix: process.env.SG_PREFIX as string,
  lease: Number(process.env.SG_LEASE),
});

function run(local: boolean) {
  return async (turn: Turn<Input>) => {
    const ids = turn.inputs.map((input) => input.id);
    const at = now();
    const started = await order();
    send({
      type: "start",
      key: turn.key,
      fence: turn.fence,
      ids,
      at,
      order: started,
      pid: process.pid,
      local,
      carried: turn.carried.map((c) => [c.value, c.fence, c.reason]),
    });
    const carry = turn.inputs[turn.inputs.length - 1]?.carry;
    if (carry !== undefined) turn.carry(carry);
    const work = turn.inputs[turn.inputs.length - 1]?.work ?? 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, work);
      turn.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    const reason: unknown = turn.signal.reason;
    const endedAt = now();
    const ended = await order();
    send({
      type: "end",
      key: turn.key,
      fence: turn.fence,
      ids,
      at: endedAt,
      order: ended,
      pid: process.pid,
      aborted: turn.signal.aborted
        ? reason instanceof TurnAbortedError
          ? reason.code
          : String(reason)
        : null,
      stale: turn.stale,
    });
  };
}

const guard = createGuard<Input>({
  store,
  mode: (process.env.SG_MODE as Mode | undefined) ?? "collect",
  // Inputs admitted by another replica run here through this handler.
  handler: run(false),
  onDrop: (drop) => send({ type: "drop", key: drop.key, id: drop.input.id, reason: drop.reason }),
  onError: (error) =>
    send({
      type: "error",
      name: error instanceof Error ? error.name : "unknown",
      message: error instanceof Error ? error.message : String(error),
    }),
});

process.on("message", (message: ToReplica) => {
  if (message.type === "submit") {
    const { key, id, work, local, carry } = message;
    const input: Input = carry === undefined ? { id, work } : { id, work, carry };
    guard.submit(key, input, local ? run(true) : undefined, { id }).then(
      (outcome) => send({ type: "admitted", id, outcome }),
      (error: unknown) => send({ type: "refused", id, error: String(error) }),
    );
  } else if (message.type === "stop") {
    guard.stop(message.key).catch(() => {});
  } else if (message.type === "close") {
    guard
      .close({ timeout: message.timeout ?? 5_000 })
      .then(() => store.close())
      .then(() => {
        send({ type: "closed", at: now() });
        if (kind === "ioredis") (client as Redis).disconnect();
        process.disconnect?.();
      });
  }
});

// Ready once a first command went through (the connections are up).
guard
  .submit(`warm-up:${process.pid}`, { id: "warm-up", work: 0 }, () => {})
  .then(
    () =>
      guard
        .onIdle()
        .then(() => send({ type: "ready", replica: store.replicaId, pid: process.pid })),
    (error: unknown) => send({ type: "refused", id: "warm-up", error: String(error) }),
  );
