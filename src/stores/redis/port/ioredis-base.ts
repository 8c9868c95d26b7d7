// === What both ioredis ports share: a duplicate for commands, another for hints
//
// ioredis writes every command to its socket as it is sent: one system call per command, which
// costs more CPU, in this process and in redis-server, than the rest of a turn's commands together
// (a turn is a few commands, and many keys send theirs within one tick, as their replies arrive in
// one read). So the commands of one tick are written together: the first command of a tick for a
// connection corks its socket, and a `process.nextTick` uncorks it, the pattern Node documents for
// `writable.cork()`. Nothing waits past that tick, so a command is still written at once or
// refused (see `base.ts`). node-redis batches a tick's commands itself.

import { BasePort } from "./base.js";
import { type IoRedisClient, off, type PortEvents, type Subscriber } from "./types.js";

/**
 * The hint connection's options: it may queue. A standalone one does not resubscribe on its own
 * after a reconnect (`open` does, see there); a Cluster's does (`CLUSTER_SUBSCRIBER`).
 */
export const SUBSCRIBER = { lazyConnect: false, enableOfflineQueue: true, autoResubscribe: false };
export const CLUSTER_SUBSCRIBER = { ...SUBSCRIBER, autoResubscribe: true };

/** A writable stream, as ioredis keeps its socket (`stream`, not part of its typed API). */
interface Corkable {
  cork(): void;
  uncork(): void;
}

function corkable(stream: unknown): stream is Corkable {
  return (
    typeof stream === "object" &&
    stream !== null &&
    typeof (stream as Corkable).cork === "function" &&
    typeof (stream as Corkable).uncork === "function"
  );
}

/** The socket of an ioredis connection, if it has one now. */
export function socketOf(client: IoRedisClient | undefined): unknown {
  return (client as { stream?: unknown } | undefined)?.stream;
}

/**
 * An ioredis port (`new Redis()` or `new Cluster()`): commands go through `commands`, a duplicate
 * the subclass made with the options that keep ioredis from queueing or re-sending them; hints
 * through another duplicate (`subscriberClient`).
 */
export abstract class IoPort<C extends IoRedisClient> extends BasePort {
  protected readonly commands: C;
  /** Sockets corked in this tick, uncorked together at its end (see the header). */
  #corked: Corkable[] = [];

  constructor(commands: C, events: PortEvents) {
    super(events);
    this.commands = commands;
    commands.on("error", this.onError);
    commands.on("ready", this.onReady);
    if (commands.status === "wait") commands.connect().catch(this.onError);
  }

  /** A new connection of the user's client for the hint subscription. */
  protected abstract subscriberClient(): IoRedisClient;

  protected get ready(): boolean {
    return this.commands.status === "ready";
  }

  /** The socket a command for `firstKey` is written to. */
  protected socketFor(_firstKey: string): unknown {
    return socketOf(this.commands);
  }

  protected send(firstKey: string, args: string[]): Promise<unknown> {
    const socket = this.socketFor(firstKey);
    if (corkable(socket) && !this.#corked.includes(socket)) {
      socket.cork();
      if (this.#corked.push(socket) === 1) process.nextTick(this.#uncork);
    }
    // A Cluster routes by the keys of the command itself.
    return this.commands.call(args[0] as string, args.slice(1));
  }

  /** The tick is over: write what its commands left in each socket's buffer, in one go. */
  readonly #uncork = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    for (const socket of corked) socket.uncork();
  };

  protected async open(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.subscriberClient();
    subscriber.on("error", this.onError);
    subscriber.on("message", (_channel: never, message: never) => listener(String(message)));
    const handle: Subscriber = { close: () => subscriber.disconnect() };
    // A standalone subscriber answers PING itself; a Cluster's would send it to some node.
    if (subscriber.isCluster !== true && subscriber.ping !== undefined) {
      handle.ping = () => (subscriber.ping as () => Promise<unknown>).call(subscriber);
    }
    this.subscriber = handle;
    if (this.closed) return handle.close();
    if (subscriber.isCluster !== true) {
      // ioredis's own resubscription after a reconnect sends SUBSCRIBE with a promise nobody
      // handles: when the connection closes before the answer (a server restart, or this port
      // replacing a deaf subscription), that is an unhandled rejection. So subscribe again here.
      let connected = false;
      subscriber.on("ready", () => {
        if (connected && !this.closed) subscriber.subscribe(...channels).catch(this.onError);
        connected = true;
      });
    }
    await subscriber.subscribe(...channels);
  }

  protected closeCommands(): void {
    off(this.commands, "ready", this.onReady);
    this.commands.disconnect();
  }
}
