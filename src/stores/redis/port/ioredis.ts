// === ioredis `new Redis()`: commands on a duplicate that neither queues nor re-sends

import { BasePort } from "./base.js";
import { type IoRedisClient, off, type PortEvents, type Subscriber } from "./types.js";

/** A connection of ioredis for hints, beside the commands' own. */
export async function ioSubscribe(
  subscriber: IoRedisClient,
  port: { onError: (error: unknown) => void; closed: () => boolean },
  keep: (subscriber: Subscriber) => void,
  channels: string[],
  listener: (message: string) => void,
): Promise<void> {
  subscriber.on("error", port.onError);
  subscriber.on("message", (_channel: never, message: never) => listener(String(message)));
  const handle: Subscriber = { close: () => subscriber.disconnect() };
  // A standalone subscriber answers PING itself; a Cluster's would send it to some node.
  if (subscriber.isCluster !== true && subscriber.ping !== undefined) {
    handle.ping = () => (subscriber.ping as () => Promise<unknown>).call(subscriber);
  }
  keep(handle);
  if (port.closed()) return handle.close();
  await subscriber.subscribe(...channels);
}

export const SUBSCRIBER = { lazyConnect: false, enableOfflineQueue: true, autoResubscribe: true };

export class IoRedisPort extends BasePort {
  readonly #client: IoRedisClient;
  readonly #commands: IoRedisClient;

  constructor(client: IoRedisClient, events: PortEvents) {
    super(events);
    this.#client = client;
    // Neither queued while offline nor sent again after a reconnect: ioredis re-sends the commands
    // a dropped connection left unanswered (autoResendUnfulfilledCommands), which would run a
    // command whose caller was already told it failed.
    this.#commands = client.duplicate({
      enableOfflineQueue: false,
      lazyConnect: false,
      autoResendUnfulfilledCommands: false,
    });
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    if (this.#commands.status === "wait") this.#commands.connect().catch(this.onError);
  }

  protected get ready(): boolean {
    return this.#commands.status === "ready";
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    return this.#commands.call(args[0] as string, args.slice(1));
  }

  protected open(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate(SUBSCRIBER);
    return ioSubscribe(
      subscriber,
      { onError: this.onError, closed: () => this.closed },
      (handle) => (this.subscriber = handle),
      channels,
      listener,
    );
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    this.#commands.disconnect();
  }
}
