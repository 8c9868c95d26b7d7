// === A replica process for measurement 5's takeover after SIGKILL (bench/redis.ts)
//
// Forked by the benchmark with `node --import tsx` (and the benchmark's TSX_TSCONFIG_PATH, so
// `session-guard` resolves to dist/ here too). It claims the keys it is told to, in turns that
// never end (the guard renews their leases every lease/3), and reports each turn's start, until
// the parent kills it. Configuration comes from the environment:
//
//   SG_SOCKET  the redis-server's unix socket     SG_CLIENT  "node-redis" | "ioredis"
//   SG_PREFIX  key prefix                          SG_LEASE   lease in ms

import { Redis } from "ioredis";
import { createClient } from "redis";
import { createGuard } from "session-guard";
import { redisStore } from "session-guard/redis";

export type ToTakeoverReplica = { readonly type: "hold"; readonly key: string };

export type FromTakeoverReplica =
  | { readonly type: "ready" }
  | { readonly type: "holding"; readonly key: string }
  | { readonly type: "error"; readonly message: string };

const send = (message: FromTakeoverReplica) => process.send?.(message);

const socket = process.env.SG_SOCKET as string;
const client =
  process.env.SG_CLIENT === "ioredis"
    ? new Redis({ path: socket })
    : createClient({ socket: { path: socket, tls: false } });
const store = redisStore({
  client,
  prefix: process.env.SG_PREFIX as string,
  lease: Number(process.env.SG_LEASE),
});
const forever = new Promise<void>(() => {});
const guard = createGuard<{ readonly n: number }>({
  store,
  // Input of the other replica never runs here: this one only holds keys until it is killed.
  handler: () => forever,
  onError: (error) => send({ type: "error", message: String(error) }),
});

process.on("message", (message: ToTakeoverReplica) => {
  if (message.type !== "hold") return;
  const { key } = message;
  guard
    .submit(key, { n: 0 }, () => {
      send({ type: "holding", key });
      return forever;
    })
    .then(
      (outcome) => {
        if (outcome !== "started") send({ type: "error", message: `${key} was ${outcome}` });
      },
      (error: unknown) => send({ type: "error", message: String(error) }),
    );
});

// Ready once a first turn went through (the connections are up, the scripts loaded).
guard
  .submit(`warm-up:${process.pid}`, { n: -1 }, () => {})
  .then(
    () => guard.onIdle().then(() => send({ type: "ready" })),
    (error: unknown) => send({ type: "error", message: String(error) }),
  );
