// === What both ioredis ports share: a duplicate for commands, another for hints
//
// ioredis writes every command to its socket as it is sent: one system call per command, which
// costs more CPU, in this process and in redis-server, than the rest of a turn's commands together
// (a turn is a few commands, and many keys send theirs within one tick, as their replies arrive in
// one read). So the commands of one tick are written together: the first command of a tick for a
// connection corks its socket, and a `process.nextTick` uncorks it, the pattern Node documents for
// `writable.cork()`. Nothing waits past that tick, so a command is still written at once or
// refused (see `base.ts`). node-redis batches a tick's commands itself.
//
// Every `FLUSH_EVERY` commands the socket is flushed within the tick, though. Written only at the
// tick's end, a burst of commands reached redis-server after Node had made the last of them, and
// the two sides took turns instead of working at once: at 64 turns in flight, the same CPU time
// per turn but a third fewer turns per second than with a flush every 16 commands (measured with
// `bench/compare-redis-builds.ts`; every 4 to 16 did as well, 32 a little worse).

import { BasePort } from "./base.js";
import { type IoRedisClient, off, type PortEvents, type Subscriber } from "./types.js";

/**
 * The hint connection's options: it may queue. A standalone one does not resubscribe on its own
 * after a reconnect (`open` does, see there); a Cluster's does (`CLUSTER_SUBSCRIBER`).
 */
export const SUBSCRIBER = { lazyConnect: false, enableOfflineQueue: true, autoResubscribe: false };
export const CLUSTER_SUBSCRIBER = { ...SUBSCRIBER, autoResubscribe: true };

/** Commands corked in a socket before they are flushed within the tick (see the header). */
const FLUSH_EVERY = 16;

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
  /** Sockets corked in this tick (and commands since their last flush), uncorked at its end. */
  #corked: { readonly socket: Corkable; commands: number }[] = [];

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
    const corked = corkable(socket) ? this.#cork(socket) : undefined;
    // A Cluster routes by the keys of the command itself.
    const reply = this.commands.call(args[0] as string, args.slice(1));
    if (corked !== undefined && ++corked.commands === FLUSH_EVERY) {
      corked.commands = 0;
      corked.socket.uncork();
      corked.socket.cork();
    }
    return reply;
  }

  /** Cork `socket` for the rest of the tick, unless it is already. */
  #cork(socket: Corkable): { readonly socket: Corkable; commands: number } {
    for (const corked of this.#corked) if (corked.socket === socket) return corked;
    socket.cork();
    const corked = { socket, commands: 0 };
    if (this.#corked.push(corked) === 1) process.nextTick(this.#uncork);
    return corked;
  }

  /** The tick is over: write what its commands left in each socket's buffer, in one go. */
  readonly #uncork = (): void => {
    const corked = this.#corked;
    this.#corked = [];
    for (const { socket } of corked) socket.uncork();
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
