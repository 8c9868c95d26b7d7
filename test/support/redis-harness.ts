// Redis for the test suites: `REDIS_URL` when set; otherwise a throwaway `redis-server` on a unix
// socket in a temp dir (no persistence); otherwise the Redis suites are skipped with a notice —
// except under `CI`, where a missing Redis fails the run. Each test isolates its keys by a random
// prefix and deletes them afterwards.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { afterAll, beforeAll } from "vitest";

/** Where clients connect: a URL or a unix socket. */
export interface RedisTarget {
  readonly url?: string;
  readonly socket?: string;
}

/** A `redis-server` this harness started. */
export interface LocalRedis extends RedisTarget {
  readonly socket: string;
  /** Stop the server (SIGTERM by default) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on the same socket. */
  start(): Promise<void>;
  /** Stop it and remove its directory. */
  dispose(): Promise<void>;
}

const hasServer = spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
const url = process.env.REDIS_URL;

/** True when the Redis suites can run here. */
export const redisAvailable = url !== undefined || hasServer;
/** True when a throwaway server can be started (outage tests need one). */
export const serverAvailable = hasServer;

if (!redisAvailable) {
  const notice =
    "session-guard: Redis suites SKIPPED — set REDIS_URL or put redis-server on PATH to run them.";
  if (process.env.CI) throw new Error(`${notice} (CI is set: a missing Redis fails the run)`);
  console.warn(`\n*** ${notice} ***\n`);
}

async function waitFor(check: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Start a throwaway `redis-server` on a unix socket in a temp dir. */
export async function startLocalRedis(): Promise<LocalRedis> {
  const dir = mkdtempSync(join(tmpdir(), "sg-redis-"));
  const socket = join(dir, "redis.sock");
  let child: ChildProcess | undefined;
  const start = async () => {
    rmSync(socket, { force: true });
    const proc = spawn(
      "redis-server",
      [
        "--port",
        "0",
        "--unixsocket",
        socket,
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    );
    child = proc;
    // Never outlive the test process, even when it dies without disposing of the server.
    const reap = () => proc.kill("SIGKILL");
    process.once("exit", reap);
    proc.once("exit", () => process.off("exit", reap));
    await waitFor(() => existsSync(socket) || proc.exitCode !== null, 5_000, "redis-server");
    if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}`);
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(signal);
    await exited;
  };
  await start();
  return {
    socket,
    start,
    stop,
    async dispose() {
      await stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<{ target: RedisTarget; dispose(): Promise<void> }> | undefined;

/** The Redis of this test file: REDIS_URL, or one throwaway server per file. */
export function redisTarget(): Promise<{ target: RedisTarget; dispose(): Promise<void> }> {
  if (shared === undefined) {
    shared =
      url !== undefined
        ? Promise.resolve({ target: { url }, dispose: async () => {} })
        : startLocalRedis().then((local) => ({ target: local, dispose: () => local.dispose() }));
  }
  return shared;
}

/** The two clients every Redis suite runs against, created as users create them. */
export const CLIENTS = [
  {
    name: "node-redis",
    create: (target: RedisTarget): unknown =>
      target.url !== undefined
        ? createClient({ url: target.url })
        : createClient({ socket: { path: target.socket as string, tls: false } }),
    /** Release the client the test created (the store closes only its own connections). */
    dispose: async (client: unknown) => {
      const c = client as ReturnType<typeof createClient>;
      if (c.isOpen) c.destroy();
    },
  },
  {
    name: "ioredis",
    create: (target: RedisTarget): unknown =>
      target.url !== undefined
        ? new Redis(target.url)
        : new Redis({ path: target.socket as string }),
    dispose: async (client: unknown) => {
      (client as Redis).disconnect();
    },
  },
] as const;

export type ClientKind = (typeof CLIENTS)[number]["name"];

/** A connected node-redis client for the test itself (inspecting and changing keys). */
export async function adminClient(target: RedisTarget) {
  const client =
    target.url !== undefined
      ? createClient({ url: target.url })
      : createClient({ socket: { path: target.socket as string, tls: false } });
  client.on("error", () => {});
  await client.connect();
  return client;
}

export type AdminClient = Awaited<ReturnType<typeof adminClient>>;

/** A suite's Redis: where clients connect, and a client for the test itself. */
export interface SuiteRedis {
  readonly target: RedisTarget;
  readonly admin: AdminClient;
}

/**
 * Connect the calling suite to Redis before its tests and let go after them (nothing happens when
 * Redis is not available: the suite is skipped). Read `target` and `admin` inside tests.
 */
export function useRedis(): SuiteRedis {
  const suite = {} as { target: RedisTarget; admin: AdminClient };
  let dispose: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (!redisAvailable) return;
    const found = await redisTarget();
    dispose = found.dispose;
    suite.target = found.target;
    suite.admin = await adminClient(found.target);
  });
  afterAll(async () => {
    suite.admin?.destroy();
    await dispose?.();
  });
  return suite;
}

/** A fresh prefix, so tests never see each other's keys (or the shared Redis's). */
export function testPrefix(): string {
  return `sgt-${randomBytes(5).toString("hex")}:`;
}

/** Every key under `prefix` (the store's keys all start with `{<prefix>`). */
export async function keysOf(admin: AdminClient, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const batch of admin.scanIterator({ MATCH: `{${prefix}*`, COUNT: 1000 })) {
    found.push(...batch);
  }
  return found;
}

/** Delete every key under `prefix`. */
export async function cleanUp(admin: AdminClient, prefix: string): Promise<void> {
  const keys = await keysOf(admin, prefix);
  for (let i = 0; i < keys.length; i += 500) await admin.del(keys.slice(i, i + 500));
}

/**
 * Keys under `prefix` other than the fence counters (which live forever, by design) and the
 * outcome records (`}o:<id>`, which live for the de-duplication window, by design).
 */
export async function leftovers(admin: AdminClient, prefix: string): Promise<string[]> {
  return (await keysOf(admin, prefix)).filter(
    (key) => !key.endsWith("}fence") && !key.includes("}o:"),
  );
}

/** Poll until `check` holds (or fail after `ms`). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 5_000,
  what = "a condition",
): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
