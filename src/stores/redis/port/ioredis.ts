// === ioredis `new Redis()`: commands on a duplicate that neither queues nor re-sends

import { IoPort, SUBSCRIBER } from "./ioredis-base.js";
import type { IoRedisClient, PortEvents } from "./types.js";

export class IoRedisPort extends IoPort<IoRedisClient> {
  readonly #client: IoRedisClient;

  constructor(client: IoRedisClient, events: PortEvents) {
    // Neither queued while offline nor sent again after a reconnect: ioredis re-sends the commands
    // a dropped connection left unanswered (autoResendUnfulfilledCommands), which would run a
    // command whose caller was already told it failed. Nor auto-pipelined, should the user's client
    // be: an auto-pipeline holds a command until the one before it is answered, which may be past
    // the command's deadline (the port writes a tick's commands together itself).
    super(
      client.duplicate({
        enableOfflineQueue: false,
        lazyConnect: false,
        autoResendUnfulfilledCommands: false,
        enableAutoPipelining: false,
      }),
      events,
    );
    this.#client = client;
  }

  protected subscriberClient(): IoRedisClient {
    return this.#client.duplicate(SUBSCRIBER);
  }
}
