// === Store clients that count what the store sends (the Redis benchmarks' round-trip counters)
//
// A client as users create it for `redisStore()`, except that every connection the store
// duplicates from it counts the commands it sends on `sent.total`: the store's round trips.

import { Redis } from "ioredis";
import { createClient } from "redis";

/** Commands sent on the store's connections. */
export interface Sent {
  total: number;
}

/** A client for the store, and how to let it go. */
export interface CountingClient {
  readonly client: unknown;
  dispose(): void;
}

/** A node-redis client whose duplicates count `sendCommand` calls. */
export function countingNodeRedis(socket: string, sent: Sent): CountingClient {
  const client = createClient({ socket: { path: socket, tls: false } });
  type Sender = { sendCommand(args: string[]): Promise<unknown> };
  const patched = client as unknown as { duplicate(options?: unknown): Sender };
  const duplicate = patched.duplicate.bind(client);
  patched.duplicate = (options?: unknown) => {
    const copy = duplicate(options);
    const send = copy.sendCommand.bind(copy);
    copy.sendCommand = (args) => {
      sent.total++;
      return send(args);
    };
    return copy;
  };
  return {
    client,
    dispose: () => {
      if (client.isOpen) client.destroy();
    },
  };
}

/** An ioredis client whose duplicates count `call` calls. */
export function countingIoredis(socket: string, sent: Sent): CountingClient {
  const client = new Redis({ path: socket, lazyConnect: true });
  type Caller = { call(name: string, args: string[]): Promise<unknown> };
  const patched = client as unknown as { duplicate(options?: unknown): Caller };
  const duplicate = patched.duplicate.bind(client);
  patched.duplicate = (options?: unknown) => {
    const copy = duplicate(options);
    const call = copy.call.bind(copy);
    copy.call = (name, args) => {
      sent.total++;
      return call(name, args);
    };
    return copy;
  };
  return { client, dispose: () => client.disconnect() };
}
