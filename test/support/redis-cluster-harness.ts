// Redis Cluster for the cluster suite: the seeds in `REDIS_CLUSTER_URLS` (comma-separated
// host:port) when set; otherwise a throwaway cluster of three masters (no replicas) started here —
// `redis-server` processes on free TCP ports of 127.0.0.1 (cluster mode needs TCP), each with its
// own config file and directory in a temp dir, no persistence, joined with
// `redis-cli --cluster create`. Without either the suite is skipped with a notice, except under
// `CI`, where a missing Redis fails the run (the policy of redis-harness.ts, which this file does
// not import, so that a CI with only a cluster does not trip over its standalone check).
//
// The admin side talks to every master on its own connection: which keys landed where, the slot of
// a key, hint subscriptions per node, and the servers' error counters (`INFO errorstats`,
// `INFO commandstats`), which catch a CROSSSLOT (or any other) error even where a client swallowed
// it. On a cluster given by REDIS_CLUSTER_URLS those counters include other clients' errors: give
// the suite a cluster of its own. Tests that stop or block a master run only on the throwaway one
// (`localCluster`).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "ioredis";
import { createClient, createCluster } from "redis";

/** A node address. */
export interface Seed {
  readonly host: string;
  readonly port: number;
}

const has = (command: string, args: string[]) =>
  spawnSync(command, args, { stdio: "ignore" }).status === 0;
const hasServer = has("redis-server", ["--version"]) && has("redis-cli", ["--version"]);
const urls = process.env.REDIS_CLUSTER_URLS?.trim() || undefined;

/** True when the cluster suite can run here. */
export const clusterAvailable = urls !== undefined || hasServer;

if (!clusterAvailable) {
  const notice =
    "session-guard: Redis Cluster suite SKIPPED — set REDIS_CLUSTER_URLS or put redis-server and redis-cli on PATH to run it.";
  if (process.env.CI) throw new Error(`${notice} (CI is set: a missing Redis fails the run)`);
  console.warn(`\n*** ${notice} ***\n`);
}

/** Parse `host:port,host:port` (an optional `redis://` is accepted). */
export function parseSeeds(text: string): Seed[] {
  return text
    .split(",")
    .map((part) => part.trim().replace(/^redis:\/\//, ""))
    .filter((part) => part !== "")
    .map((part) => {
      const colon = part.lastIndexOf(":");
      const host = part.slice(0, colon).replace(/^\[|\]$/g, "");
      const port = Number(part.slice(colon + 1));
      if (colon <= 0 || !Number.isInteger(port) || port <= 0) {
        throw new Error(`REDIS_CLUSTER_URLS: "${part}" is not host:port`);
      }
      return { host, port };
    });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bind `port` (0: any) on 127.0.0.1 and close it again; answers the port, or 0 if taken. */
function probe(port: number): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(0));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/** A port that is free now, with its cluster bus port (port + 10000) free too. */
async function freePort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await probe(0);
    if (port === 0 || port + 10_000 > 65_535 || taken.has(port) || taken.has(port + 10_000)) {
      continue;
    }
    if ((await probe(port + 10_000)) === 0) continue;
    taken.add(port);
    taken.add(port + 10_000);
    return port;
  }
  throw new Error("no free port pair (port, port + 10000) found on 127.0.0.1");
}

/** Run a command to its end; answers its exit code and output. */
function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
  });
}

/** One command to one node, on a connection opened for it. */
async function ask(seed: Seed, args: string[]): Promise<unknown> {
  const client = createClient({
    socket: { host: seed.host, port: seed.port, reconnectStrategy: false, connectTimeout: 1_000 },
  });
  client.on("error", () => {});
  try {
    await client.connect();
    return await client.sendCommand(args);
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** A master this harness started. */
export interface LocalNode {
  readonly seed: Seed;
  /** Stop the server (SIGKILL by default) and wait for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Start it again on its port, with its cluster config (it rejoins with its slots, empty). */
  start(): Promise<void>;
}

/** A cluster this harness started. */
export interface LocalCluster {
  readonly seeds: Seed[];
  readonly nodes: readonly LocalNode[];
  dispose(): Promise<void>;
}

/** Start three masters (no replicas) on free ports, join them, wait for `cluster_state:ok`. */
export async function startLocalCluster(masters = 3): Promise<LocalCluster> {
  const dir = mkdtempSync(join(tmpdir(), "sg-cluster-"));
  const children = new Set<ChildProcess>();
  const reap = () => {
    for (const child of children) child.kill("SIGKILL");
  };
  // Never outlive the test process, even when it dies without disposing of the cluster.
  process.once("exit", reap);
  const kill = (child: ChildProcess, signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    return exited;
  };
  const dispose = async () => {
    process.off("exit", reap);
    await Promise.all([...children].map((child) => kill(child, "SIGKILL")));
    rmSync(dir, { recursive: true, force: true });
  };
  /** Spawn a node on `port`; answers it once it answers PING, or undefined if it exited. */
  const spawnNode = async (port: number): Promise<ChildProcess | undefined> => {
    const nodeDir = join(dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(nodeDir, "nodes.conf"),
        "--cluster-node-timeout",
        "5000",
        "--dir",
        nodeDir,
        "--save",
        "",
        "--appendonly",
        "no",
      ],
      { stdio: "ignore" },
    );
    children.add(child);
    child.once("exit", () => children.delete(child));
    if (await waitForPing({ host: "127.0.0.1", port }, child)) return child;
    return undefined;
  };
  try {
    const taken = new Set<number>();
    const nodes: LocalNode[] = [];
    for (let i = 0; i < masters; i++) {
      // A port found free may be taken before the server binds it: try another one then.
      for (let attempt = 0; ; attempt++) {
        const port = await freePort(taken);
        let child = await spawnNode(port);
        if (child === undefined) {
          if (attempt >= 3) throw new Error(`redis-server did not start on port ${port}`);
          continue;
        }
        const seed = { host: "127.0.0.1", port };
        nodes.push({
          seed,
          async stop(signal = "SIGKILL") {
            if (child !== undefined) await kill(child, signal);
            child = undefined;
          },
          async start() {
            if (child !== undefined) return;
            child = await spawnNode(port);
            if (child === undefined) throw new Error(`redis-server did not restart on ${port}`);
            await waitForCluster(
              nodes.map((node) => node.seed),
              15_000,
            );
          },
        });
        break;
      }
    }
    const seeds = nodes.map((node) => node.seed);
    const created = await run("redis-cli", [
      "--cluster",
      "create",
      ...seeds.map((seed) => `${seed.host}:${seed.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    if (created.code !== 0) {
      throw new Error(`redis-cli --cluster create failed (${created.code}):\n${created.output}`);
    }
    await waitForCluster(seeds, 15_000);
    return { seeds, nodes, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** Poll until the node answers PING (true) or its process exited (false). */
async function waitForPing(seed: Seed, child: ChildProcess): Promise<boolean> {
  const until = Date.now() + 5_000;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if ((await ask(seed, ["PING"]).catch(() => undefined)) === "PONG") return true;
    await sleep(20);
  }
  child.kill("SIGKILL");
  return false;
}

/** Poll until every node says `cluster_state:ok` and knows every other node's slots. */
async function waitForCluster(seeds: Seed[], ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const states = await Promise.all(
      seeds.map(async (seed) => {
        const info = String(await ask(seed, ["CLUSTER", "INFO"]).catch(() => ""));
        const slots = await ask(seed, ["CLUSTER", "SLOTS"]).catch(() => []);
        return (
          /cluster_state:ok/.test(info) &&
          /cluster_slots_assigned:16384/.test(info) &&
          Array.isArray(slots) &&
          slots.length >= seeds.length
        );
      }),
    );
    if (states.every(Boolean)) return;
    if (Date.now() > until) throw new Error("timed out waiting for cluster_state:ok on every node");
    await sleep(50);
  }
}

/** The cluster of a test file; `local` when this harness started it (outage tests need that). */
export interface ClusterTarget {
  readonly seeds: Seed[];
  readonly local: LocalCluster | undefined;
  dispose(): Promise<void>;
}

let shared: Promise<ClusterTarget> | undefined;

/** The cluster of this test file: REDIS_CLUSTER_URLS, or one throwaway cluster per file. */
export function clusterTarget(): Promise<ClusterTarget> {
  if (shared === undefined) {
    shared =
      urls !== undefined
        ? Promise.resolve({ seeds: parseSeeds(urls), local: undefined, dispose: async () => {} })
        : startLocalCluster().then((local) => ({
            seeds: local.seeds,
            local,
            dispose: () => local.dispose(),
          }));
  }
  return shared;
}

/** True when this harness starts the cluster itself (tests that stop a node need that). */
export const localCluster = urls === undefined && hasServer;

/** The two cluster clients, created as users create them (the store connects what it needs). */
export const CLUSTER_CLIENTS = [
  {
    name: "node-redis",
    create: (seeds: readonly Seed[]): unknown =>
      createCluster({
        rootNodes: seeds.map((seed) => ({ url: `redis://${seed.host}:${seed.port}` })),
      }),
    /** Release the client the test created (the store closes only its own connections). */
    dispose: async (client: unknown) => {
      const cluster = client as ReturnType<typeof createCluster>;
      if (cluster.isOpen) cluster.destroy();
    },
  },
  {
    name: "ioredis",
    create: (seeds: readonly Seed[]): unknown =>
      new Cluster(seeds.map((seed) => ({ host: seed.host, port: seed.port }))),
    dispose: async (client: unknown) => {
      (client as Cluster).disconnect();
    },
  },
] as const;

type NodeClient = ReturnType<typeof createClient>;

/** What the servers counted: errors by name (`INFO errorstats`), failed calls by command. */
export interface ServerErrors {
  readonly byName: Map<string, number>;
  /** `rejected_calls + failed_calls` of each command (`INFO commandstats`). */
  readonly byCommand: Map<string, number>;
}

/** The test's own view of the cluster: one connection per master. */
export interface ClusterAdmin {
  /** The masters, as `host:port`. */
  readonly nodes: readonly string[];
  /** `CLUSTER KEYSLOT key`. */
  keyslot(key: string): Promise<number>;
  /** The master (`host:port`) serving `key`'s slot. */
  nodeOf(key: string): Promise<string>;
  /** Keys matching `{<prefix>*` on each master. */
  keysByNode(prefix: string): Promise<Map<string, string[]>>;
  /** Delete every key under `prefix` (one key per command: keys of several slots). */
  cleanUp(prefix: string): Promise<void>;
  /** Send one command to one master (`host:port`). */
  command(node: string, args: string[]): Promise<unknown>;
  /** Subscribers of `channel` over every master (`PUBSUB NUMSUB` is per node in a cluster). */
  subscribers(channel: string): Promise<number>;
  /** Subscribers of `channel` on each master. */
  subscribersByNode(channel: string): Promise<Map<string, number>>;
  /** Every master's error counters, summed. */
  serverErrors(): Promise<ServerErrors>;
  close(): void;
}

/** Connect to every master of the cluster the seeds belong to. */
export async function clusterAdmin(seeds: readonly Seed[]): Promise<ClusterAdmin> {
  const first = seeds[0] as Seed;
  const slots = (await ask(first, ["CLUSTER", "SLOTS"])) as [number, number, [string, number]][];
  const addresses = new Map<string, Seed>();
  const ranges: { from: number; to: number; node: string }[] = [];
  for (const [from, to, master] of slots) {
    const host = master[0] === "" || master[0] === "?" ? first.host : master[0];
    const node = `${host}:${master[1]}`;
    addresses.set(node, { host, port: Number(master[1]) });
    ranges.push({ from: Number(from), to: Number(to), node });
  }
  const clients = new Map<string, NodeClient>();
  for (const [name, seed] of addresses) {
    const client = createClient({ socket: { host: seed.host, port: seed.port } });
    client.on("error", () => {});
    await client.connect();
    clients.set(name, client);
  }
  const any = clients.values().next().value as NodeClient;
  const keyslot = async (key: string) => Number(await any.sendCommand(["CLUSTER", "KEYSLOT", key]));
  const subscribersByNode = async (channel: string) => {
    const out = new Map<string, number>();
    for (const [name, client] of clients) {
      const reply = (await client.sendCommand(["PUBSUB", "NUMSUB", channel])) as unknown[];
      out.set(name, Number(reply[1] ?? 0));
    }
    return out;
  };
  const keysOn = async (client: NodeClient, prefix: string) => {
    const found: string[] = [];
    for await (const batch of client.scanIterator({ MATCH: `{${prefix}*`, COUNT: 1000 })) {
      found.push(...batch);
    }
    return found;
  };
  return {
    nodes: [...clients.keys()],
    keyslot,
    async nodeOf(key) {
      const slot = await keyslot(key);
      const range = ranges.find((r) => r.from <= slot && slot <= r.to);
      if (range === undefined) throw new Error(`slot ${slot} is not served`);
      return range.node;
    },
    async keysByNode(prefix) {
      const out = new Map<string, string[]>();
      for (const [name, client] of clients) out.set(name, await keysOn(client, prefix));
      return out;
    },
    async cleanUp(prefix) {
      for (const client of clients.values()) {
        const keys = await keysOn(client, prefix);
        await Promise.all(keys.map((key) => client.del(key)));
      }
    },
    command(node, args) {
      const client = clients.get(node);
      if (client === undefined) return Promise.reject(new Error(`${node} is not a master`));
      return client.sendCommand(args);
    },
    async subscribers(channel) {
      let count = 0;
      for (const n of (await subscribersByNode(channel)).values()) count += n;
      return count;
    },
    subscribersByNode,
    async serverErrors() {
      const byName = new Map<string, number>();
      const byCommand = new Map<string, number>();
      const add = (map: Map<string, number>, name: string, count: number) =>
        map.set(name, (map.get(name) ?? 0) + count);
      for (const client of clients.values()) {
        const errors = await client.info("errorstats");
        for (const match of errors.matchAll(/^errorstat_([^:]+):count=(\d+)/gm)) {
          add(byName, match[1] as string, Number(match[2]));
        }
        const commands = await client.info("commandstats");
        for (const match of commands.matchAll(
          /^cmdstat_([^:]+):.*rejected_calls=(\d+),failed_calls=(\d+)/gm,
        )) {
          add(byCommand, match[1] as string, Number(match[2]) + Number(match[3]));
        }
      }
      return { byName, byCommand };
    },
    close() {
      for (const client of clients.values()) client.destroy();
    },
  };
}

/**
 * What went wrong on the servers between two readings: errors by name, and failed or rejected
 * calls by command. Redirections (MOVED, ASK), NOSCRIPT (answered by EVAL) and the `allowed` names
 * are expected; they are left out, and so are as many failed calls as they explain. Errors no command is charged with
 * (node-redis's `CLIENT SETINFO` on a server before 7.2 answers ERR) are not counted by command;
 * any other error name (CROSSSLOT, WRONGTYPE, BUSY…) is.
 */
export function newErrors(
  before: ServerErrors,
  after: ServerErrors,
  allowed: readonly string[] = [],
): Record<string, number> {
  const expectedNames = ["MOVED", "ASK", "NOSCRIPT", ...allowed];
  const grown = (a: Map<string, number>, b: Map<string, number>) => {
    const out = new Map<string, number>();
    for (const [name, count] of b) {
      const delta = count - (a.get(name) ?? 0);
      if (delta > 0) out.set(name, delta);
    }
    return out;
  };
  const names = grown(before.byName, after.byName);
  const commands = grown(before.byCommand, after.byCommand);
  const expected = expectedNames.reduce((sum, n) => sum + (names.get(n) ?? 0), 0);
  const out: Record<string, number> = {};
  for (const [name, count] of names) {
    if (!expectedNames.includes(name) && name !== "ERR") out[name] = count;
  }
  const failed = [...commands.values()].reduce((sum, n) => sum + n, 0);
  if (failed > expected) {
    for (const [command, count] of commands) out[`calls of ${command}`] = count;
    out[`explained by ${expectedNames.join(", ")}`] = expected;
  }
  return out;
}

/** A fresh prefix, so tests never see each other's keys (or a shared cluster's). */
export function testPrefix(): string {
  return `sgc-${randomBytes(5).toString("hex")}:`;
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
    await sleep(10);
  }
}
