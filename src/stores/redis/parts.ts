// === The Redis store's parts that its collaborators share
//
// The operations off the hot path (control.ts), the takeover (takeover.ts) and the readers of the
// hot path's answers (replies.ts) each reach the store through a narrow interface of their own;
// these are the parts every one of them reads, named once.

import type { StoreEntry } from "session-guard";
import type { LocalEntries } from "./entries.js";
import type { Bucket, Names } from "./format.js";
import type { RedisPort } from "./port/index.js";
import type { ScriptRunner } from "./runner.js";

export interface StoreParts<E extends StoreEntry> {
  readonly replicaId: string;
  /** Ms a command may take. */
  readonly commandTimeout: number;
  readonly buckets: readonly Bucket[];
  readonly port: RedisPort;
  readonly entries: LocalEntries<E>;
  /** Pending counts last learned, for keys held or watched here. */
  readonly pending: Map<string, number>;
  /** Runs the scripts within the command timeout; reports a background outage once. */
  readonly scripts: ScriptRunner;
  names(key: string): Names;
}
