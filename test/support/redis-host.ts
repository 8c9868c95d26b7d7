// A `StoreHost` for driving a Redis store directly (without a guard), recording what the store
// tells it, and a unix-socket proxy in front of a Redis server that can delay, swallow or drop
// traffic per connection — the network faults of issue 18.

import { connect, createServer, type Socket } from "node:net";
import type { Claim, StoreDrop, StoreEntry, StoreHost } from "session-guard";

/** An entry as the tests admit it: JSON data, optional id, group and expiry. */
export interface TestEntry extends StoreEntry {
  readonly data: string;
}

export function entry(
  text: string,
  options: { id?: string; alone?: boolean; expiresAt?: number; group?: string } = {},
): TestEntry {
  return {
    id: options.id,
    alone: options.alone ?? false,
    expiresAt: options.expiresAt ?? Number.POSITIVE_INFINITY,
    group: options.group,
    data: JSON.stringify(text),
  };
}

/** The text of an entry (admitted here, or revived from another store). */
export function textOf(e: StoreEntry): string {
  return JSON.parse(e.data as string) as string;
}

export interface RecordingHost extends StoreHost<TestEntry> {
  /** Keys the store claimed on its own (takeovers), with the batch's texts. */
  readonly claims: { key: string; claim: Claim; batch: string[] }[];
  readonly drops: { key: string; drops: StoreDrop<TestEntry>[] }[];
  readonly stops: { key: string; token: string }[];
  readonly errors: unknown[];
  /** Entries of other replicas, as the store gave them to `revive`. */
  readonly revived: StoreEntry[];
  /** The key prefix of this guard's keys (`StoreHost.namespace`, when the guard offers it). */
  namespace?: string;
  closed: boolean;
}

/** A host that records what the store hands it. */
export function recordingHost(namespace?: string): RecordingHost {
  const host: RecordingHost = {
    claims: [],
    drops: [],
    stops: [],
    errors: [],
    revived: [],
    closed: false,
    revive: (stored) => {
      host.revived.push(stored);
      return { ...stored } as TestEntry;
    },
    acquired(key, claim, batch) {
      host.claims.push({ key, claim, batch: batch.map(textOf) });
    },
    dropped(key, drops) {
      host.drops.push({ key, drops: [...drops] });
    },
    pending() {},
    stopped(key, token) {
      host.stops.push({ key, token });
    },
    freed() {},
    departed() {},
    error(error) {
      host.errors.push(error);
    },
  };
  if (namespace !== undefined) host.namespace = namespace;
  return host;
}

/** A proxy on a unix socket in front of `target`, with per-connection faults. */
export interface FaultyProxy {
  readonly socket: string;
  /** The server behind the proxy. */
  readonly target: string;
  /** Connections open now, with what the client sent first (to tell a subscriber apart). */
  readonly links: Set<Socket & { sent: string }>;
  /** Replies from Redis are held back this many ms (one-way latency on the way back). */
  replyDelay: number;
  /** Replies to these connections are dropped (a half-open connection). */
  readonly deaf: Set<Socket>;
  /** The links that subscribed to something. */
  subscribers(): (Socket & { sent: string })[];
  close(): Promise<void>;
}

export async function faultyProxy(target: string, socket: string): Promise<FaultyProxy> {
  const links = new Set<Socket & { sent: string }>();
  const deaf = new Set<Socket>();
  const proxy: FaultyProxy = {
    socket,
    target,
    links,
    replyDelay: 0,
    deaf,
    subscribers: () => [...links].filter((l) => /subscribe/i.test(l.sent)),
    close: () => {
      for (const link of links) link.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((raw) => {
    const down = raw as Socket & { sent: string };
    down.sent = "";
    const up = connect(target);
    links.add(down);
    down.on("data", (data) => {
      if (down.sent.length < 4096) down.sent += data.toString();
      up.write(data);
    });
    // Replies keep their order: each is written at its delay, but never before the one before it.
    let last = 0;
    up.on("data", (data) => {
      if (deaf.has(down)) return;
      const at = Math.max(Date.now() + proxy.replyDelay, last);
      last = at;
      if (at <= Date.now()) down.write(data);
      else setTimeout(() => down.write(data), at - Date.now());
    });
    down.on("close", () => {
      links.delete(down);
      deaf.delete(down);
      up.destroy();
    });
    up.on("close", () => down.destroy());
    down.on("error", () => {});
    up.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  return proxy;
}
