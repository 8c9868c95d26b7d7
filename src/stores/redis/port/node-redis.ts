// === node-redis `createClient()`: commands on a duplicate without an offline queue

import { BasePort } from "./base.js";
import { type NodeRedisClient, off, type PortEvents } from "./types.js";

export class NodeRedisPort extends BasePort {
  readonly #client: NodeRedisClient;
  readonly #commands: NodeRedisClient;

  constructor(client: NodeRedisClient, events: PortEvents) {
    super(events);
    this.#client = client;
    this.#commands = client.duplicate({ disableOfflineQueue: true });
    this.#commands.on("error", this.onError);
    this.#commands.on("ready", this.onReady);
    // Resolves once connected; until then (and during outages) the client reconnects on its own.
    this.#commands.connect().catch(this.onError);
  }

  protected get ready(): boolean {
    return this.#commands.isReady;
  }

  protected send(_firstKey: string, args: string[]): Promise<unknown> {
    // Without an offline queue, node-redis writes the command at once or refuses it.
    return this.#commands.sendCommand(args);
  }

  protected async open(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#client.duplicate();
    subscriber.on("error", this.onError);
    // node-redis answers PING on a subscribed connection ("pong").
    this.subscriber = {
      close: () => subscriber.destroy(),
      ping: () => subscriber.ping?.() as Promise<unknown>,
    };
    if (this.closed) return this.subscriber.close();
    await subscriber.connect();
    await subscriber.subscribe(channels, (message) => listener(String(message)));
  }

  protected closeCommands(): void {
    off(this.#commands, "ready", this.onReady);
    this.#commands.destroy();
  }
}
