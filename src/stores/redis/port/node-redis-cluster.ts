// === node-redis `createCluster()`: readiness per slot's master

import { BasePort } from "./base.js";
import { slotOf } from "./slot.js";
import {
  messageOf,
  type NodeRedisCluster,
  type NodeRedisNode,
  noop,
  off,
  type PortEvents,
} from "./types.js";

/** Wait before connecting a node-redis cluster again after its first connect failed. */
const RECONNECT_CLUSTER = 1_000;

/**
 * node-redis `createCluster`. Each node client of the duplicate has no offline queue and
 * reconnects on its own; a command is handed to the cluster only when its slot's master client is
 * ready, and waits for that client otherwise. "The client is offline" / "The client is closed"
 * (refused before anything was queued), CLUSTERDOWN and TRYAGAIN (refused by Redis before running
 * it) are sent again within the deadline.
 */
export class NodeRedisClusterPort extends BasePort {
  override readonly cluster = true;
  readonly #cluster: NodeRedisCluster;
  readonly #commands: NodeRedisCluster;
  /** Node clients whose `ready` wakes the waiting calls. */
  readonly #hooked = new WeakSet<object>();
  #connected = false;
  #retry: ReturnType<typeof setTimeout> | undefined;

  constructor(cluster: NodeRedisCluster, events: PortEvents) {
    super(events);
    this.#cluster = cluster;
    // Every node client of the duplicate refuses commands while offline.
    const defaults = { ...(cluster._options?.defaults ?? {}), disableOfflineQueue: true };
    this.#commands = cluster.duplicate({ defaults });
    this.#commands.on("error", this.onError);
    // A node client's first connection (its reconnections are hooked in `nudge`).
    this.#commands.on("node-ready", this.wake);
    this.#connect();
  }

  /** Connect the cluster; node-redis does not retry a first discovery that failed, so retry it. */
  #connect(): void {
    this.#retry = undefined;
    if (this.closed) return;
    this.#commands.connect().then(
      () => {
        this.#connected = true;
        this.onReady();
      },
      (error: unknown) => {
        this.onError(error);
        if (this.closed || this.#commands.isOpen) return;
        this.#retry = setTimeout(() => this.#connect(), RECONNECT_CLUSTER);
        this.#retry.unref?.();
      },
    );
  }

  protected get ready(): boolean {
    return this.#connected;
  }

  #master(firstKey: string): NodeRedisNode | undefined {
    return this.#commands.slots?.[slotOf(firstKey)]?.master;
  }

  protected override readyFor(firstKey: string): boolean {
    // Not `#connected`: connect() resolves only once every master is connected, and the masters
    // that are up serve their slots before that.
    if (this.#commands.slots === undefined) return this.#connected;
    const node = this.#master(firstKey);
    return node?.client?.isReady === true && node.connectPromise === undefined;
  }

  protected override nudge(firstKey: string): void {
    const node = this.#master(firstKey);
    if (node === undefined) return;
    const client = node.client;
    if (client === undefined) {
      // A node without a client yet (`minimizeConnections`): create and connect it.
      this.#commands.nodeClient?.(node).catch(noop);
    } else if (!this.#hooked.has(client)) {
      this.#hooked.add(client);
      client.on("ready", this.wake);
    }
  }

  protected override unsent(error: unknown): boolean {
    const message = messageOf(error);
    return (
      message === "The client is offline" ||
      message === "The client is closed" ||
      message.startsWith("CLUSTERDOWN") ||
      message.startsWith("TRYAGAIN")
    );
  }

  protected send(firstKey: string, args: string[]): Promise<unknown> {
    return this.#commands.sendCommand(firstKey, false, args);
  }

  protected async open(channels: string[], listener: (message: string) => void): Promise<void> {
    const subscriber = this.#cluster.duplicate();
    subscriber.on("error", this.onError);
    this.subscriber = { close: () => subscriber.destroy() };
    if (this.closed) return this.subscriber.close();
    await subscriber.connect();
    await subscriber.subscribe(channels, (message) => listener(String(message)));
  }

  protected closeCommands(): void {
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    off(this.#commands, "node-ready", this.wake);
    this.#commands.destroy();
  }
}
