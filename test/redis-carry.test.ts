// Carried work and the busy mode per input across replicas (issue 15) with a real Redis and both
// clients. Replicas are guards in this process, each with its own store (own connections, own
// replica id) on one prefix, so what crosses between them goes through Redis as between processes;
// the SIGKILL'd holder is a forked replica (test/support/redis-replica.ts).

import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  type Carried,
  CarryTooLargeError,
  createGuard,
  type Guard,
  type GuardOptions,
  type Mode,
  type Turn,
  TurnAbortedError,
} from "session-guard";
import { bucketOf, type RedisStore, redisStore } from "session-guard/redis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deferred } from "./support/helpers.js";
import {
  CLIENTS,
  cleanUp,
  eventually,
  leftovers,
  redisAvailable,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";
import { killStore } from "./support/redis-kill.js";
import type { FromReplica, ToReplica } from "./support/redis-replica.js";

const SCRIPT = fileURLToPath(new URL("./support/redis-replica.ts", import.meta.url));

const LEASE = 600;

interface Msg {
  readonly text: string;
  /** For a mode function: the busy mode this input asks for. */
  readonly mode?: Mode;
}

/** What a turn saw: where it ran, its inputs, what it was handed, and how it ended. */
interface Seen {
  readonly by: string;
  readonly fence: number;
  readonly inputs: string[];
  readonly carried: readonly Carried[];
  aborted?: string;
  /** Each pending notification the turn heard, and whether it was aborted by then. */
  readonly heard: { pending: number; aborted: boolean }[];
}

const db = useRedis();

type SubscribeFn = (channels: string[], listener: (message: string) => void) => Promise<void>;

/** Resolves when `signal` aborts (never rejects). */
const aborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

const codeOf = (signal: AbortSignal) =>
  signal.reason instanceof TurnAbortedError ? signal.reason.code : String(signal.reason?.name);

describe.skipIf(!redisAvailable).each(CLIENTS)(
  "carried work across replicas with $name",
  (kind) => {
    let prefix: string;
    const open: { close(): Promise<void> }[] = [];

    afterEach(async () => {
      for (const item of open.splice(0).reverse()) await item.close();
      await cleanUp(db.admin, prefix);
    });

    interface Replica {
      readonly name: string;
      readonly store: RedisStore;
      readonly guard: Guard<Msg>;
      readonly errors: unknown[];
      close(): Promise<void>;
    }

    function replica(
      name: string,
      options: Partial<GuardOptions<Msg>> & { handler: GuardOptions<Msg>["handler"] },
      lease = LEASE,
    ): Replica {
      const client = kind.create(db.target);
      const store = redisStore({ client, prefix, lease });
      const errors: unknown[] = [];
      const guard = createGuard<Msg>({
        onError: (error) => void errors.push(error),
        ...options,
        store,
      });
      let closed = false;
      const made: Replica = {
        name,
        store,
        guard,
        errors,
        async close() {
          if (closed) return;
          closed = true;
          await guard.close({ timeout: 1_000 });
          await store.close();
          await kind.dispose(client);
        },
      };
      open.push(made);
      return made;
    }

    /** A mode function: the input's own `mode`, else collect. */
    const perInput = (input: Msg): Mode => input.mode ?? "collect";

    /**
     * A handler that records each turn; the first input `carrier` carries `carry` (each value in
     * turn) and waits for its abort, then carries its last value again.
     */
    function handler(name: string, seen: Seen[], plan: Record<string, unknown[]>) {
      return async (turn: Turn<Msg>) => {
        const record: Seen = {
          by: name,
          fence: turn.fence,
          inputs: turn.inputs.map((m) => m.text),
          carried: turn.carried,
          heard: [],
        };
        turn.onPending((pending) => record.heard.push({ pending, aborted: turn.signal.aborted }));
        seen.push(record);
        const values = plan[turn.inputs[0]?.text ?? ""];
        if (values === undefined) return;
        for (const value of values) turn.carry(value);
        await aborted(turn.signal);
        record.aborted = codeOf(turn.signal);
      };
    }

    /** The key's carry list in Redis (the running claim's slot first), as the store keeps it. */
    function carryList(key: string): Promise<string[]> {
      return db.admin.lRange(`{${prefix}${bucketOf(key)}}c:${key}`, 0, -1);
    }

    /** The running claim's value has reached Redis (the guard writes it in the background). */
    const written = (key: string, value: unknown) =>
      eventually(
        async () => (await carryList(key))[0]?.endsWith(`|${JSON.stringify(value)}`) === true,
        5_000,
        "the carry write",
      );

    beforeEach(() => {
      prefix = testPrefix();
    });

    it("superseded: input at B aborts A's turn (interrupt mode); A's next turn gets the partial answer", async () => {
      const seen: Seen[] = [];
      const partial = { partial: "The capital is Sydney" };
      const plan = { question: [{ partial: "The capital is Syd" }, partial] };
      const A = replica("A", { mode: "interrupt", handler: handler("A", seen, plan) });
      const B = replica("B", { mode: "interrupt", handler: handler("B", seen, plan) });
      expect(await A.guard.submit("chat", { text: "question" })).toBe("started");
      await written("chat", partial);
      expect(await B.guard.submit("chat", { text: "no, New Zealand" })).toBe("queued");
      await eventually(() => seen.length === 2, 5_000, "the next turn");
      await A.guard.onIdle();
      const [first, second] = seen;
      expect(first?.aborted).toBe("superseded");
      expect(second?.inputs).toEqual(["no, New Zealand"]);
      expect(second?.carried).toEqual([
        { value: { partial: "The capital is Sydney" }, fence: first?.fence, reason: "superseded" },
      ]);
      // The turn that ran with it ended well: the key was released and nothing is left behind.
      await eventually(
        async () => (await leftovers(db.admin, prefix)).length === 0,
        3_000,
        "release",
      );
      expect([...A.errors, ...B.errors]).toEqual([]);
    });

    it("a per-input interrupt admitted at B aborts A's turn although A's mode is collect; a collect input does not", async () => {
      const seen: Seen[] = [];
      const plan = { draft: ["half an answer"] };
      const A = replica("A", { mode: "collect", handler: handler("A", seen, plan) });
      const B = replica("B", { mode: perInput, handler: handler("B", seen, plan) });
      expect(await A.guard.submit("chat", { text: "draft" })).toBe("started");
      await written("chat", "half an answer");
      expect(await B.guard.submit("chat", { text: "also this", mode: "collect" })).toBe("queued");
      // The hint of a collect input reaches A's turn without aborting it (the abort would come first).
      await eventually(() => (seen[0]?.heard.length ?? 0) >= 1, 5_000, "the collect hint");
      expect(seen[0]?.heard[0]).toEqual({ pending: 1, aborted: false });
      expect(await B.guard.submit("chat", { text: "stop, do this", mode: "interrupt" })).toBe(
        "queued",
      );
      await eventually(() => seen.length === 2, 5_000, "the next turn");
      await A.guard.onIdle();
      expect(seen[0]?.aborted).toBe("superseded");
      expect(seen[0]?.heard.at(-1)).toEqual({ pending: 2, aborted: true });
      expect(seen[1]).toMatchObject({
        by: "A",
        inputs: ["also this", "stop, do this"],
        carried: [{ value: "half an answer", fence: seen[0]?.fence, reason: "superseded" }],
      });
      expect([...A.errors, ...B.errors]).toEqual([]);
    });

    it("a lost interrupt hint: A's next renewal interrupts its turn all the same", async () => {
      const client = kind.create(db.target);
      const store = redisStore({ client, prefix, lease: LEASE });
      // A's store loses the first interrupt hint sent to it (a dropped pub/sub message).
      const lost: string[] = [];
      const port = (store as unknown as { port: { subscribe: SubscribeFn } }).port;
      const subscribe = port.subscribe.bind(port);
      port.subscribe = (channels, listener) =>
        subscribe(channels, (message) => {
          if (lost.length === 0 && /^p\|[^|]*\|\+/.test(message)) lost.push(message);
          else listener(message);
        });
      const seen: Seen[] = [];
      const A = createGuard<Msg>({
        store,
        mode: "collect",
        handler: handler("A", seen, { draft: ["half"] }),
      });
      open.push({
        close: async () => {
          await A.close({ timeout: 1_000 });
          await store.close();
          await kind.dispose(client);
        },
      });
      const B = replica("B", { mode: perInput, handler: handler("B", seen, {}) });
      expect(await A.submit("chat", { text: "draft" })).toBe("started");
      await written("chat", "half");
      expect(await B.guard.submit("chat", { text: "stop", mode: "interrupt" })).toBe("queued");
      await eventually(() => seen.length === 2, LEASE * 3, "the renewal's interrupt");
      expect(lost).toHaveLength(1);
      expect(seen[0]?.aborted).toBe("superseded");
      expect(seen[1]).toMatchObject({
        inputs: ["stop"],
        carried: [{ value: "half", fence: seen[0]?.fence, reason: "superseded" }],
      });
      await A.onIdle();
    });

    it("maxCarry counts what the store hands on: a carry past it throws, and the store keeps what the guard allowed", async () => {
      const seen: Seen[] = [];
      const refused: unknown[] = [];
      const twenty = "x".repeat(18); // 20 bytes as JSON
      const A = replica("A", {
        mode: "interrupt",
        maxCarry: 50,
        handler: async (turn) => {
          seen.push({
            by: "A",
            fence: turn.fence,
            inputs: turn.inputs.map((m) => m.text),
            carried: turn.carried,
            heard: [],
          });
          if (turn.inputs[0]?.text === "last") return;
          turn.carry(twenty);
          if (turn.carried.length > 0) {
            try {
              turn.carry(twenty + twenty); // 20 handed on + 40 > 50
            } catch (error) {
              refused.push(error);
            }
          }
          await aborted(turn.signal);
        },
      });
      const B = replica("B", { mode: "interrupt", handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "one" })).toBe("started");
      await written("chat", twenty);
      expect(await B.guard.submit("chat", { text: "two" })).toBe("queued");
      await eventually(() => seen.length === 2, 5_000, "the second turn");
      await written("chat", twenty);
      expect(await B.guard.submit("chat", { text: "last" })).toBe("queued");
      await eventually(() => seen.length === 3, 5_000, "the last turn");
      await A.guard.onIdle();
      expect(refused).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(CarryTooLargeError);
      // The refused value was never written: the last turn got the two values within the limit.
      expect(seen[2]?.carried.map((c) => c.value)).toEqual([twenty, twenty]);
    });

    it("a carry list no claim is handed (left by a replica of an earlier version) is deleted by the next admission", async () => {
      const seen: Seen[] = [];
      const A = replica("A", { handler: handler("A", seen, {}) });
      const stale = `{${prefix}${bucketOf("chat")}}c:chat`;
      await db.admin.rPush(stale, ["", `superseded|1|"from long ago"`]);
      expect(await A.guard.submit("chat", { text: "hello" })).toBe("started");
      await A.guard.onIdle();
      expect(seen[0]?.carried).toEqual([]);
      expect(await db.admin.exists(stale)).toBe(0);
    });

    it("a per-input queue admitted at B runs alone at A, in order", async () => {
      const seen: Seen[] = [];
      const gate = deferred();
      const A = replica("A", {
        mode: "collect",
        handler: async (turn) => {
          seen.push({
            by: "A",
            fence: turn.fence,
            inputs: turn.inputs.map((m) => m.text),
            carried: turn.carried,
            heard: [],
          });
          if (turn.inputs[0]?.text === "first") await gate.promise;
        },
      });
      const B = replica("B", { mode: perInput, handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "first" })).toBe("started");
      expect(await B.guard.submit("chat", { text: "c1" })).toBe("queued");
      expect(await B.guard.submit("chat", { text: "q", mode: "queue" })).toBe("queued");
      expect(await B.guard.submit("chat", { text: "c2" })).toBe("queued");
      expect(await B.guard.submit("chat", { text: "c3" })).toBe("queued");
      gate.resolve();
      await eventually(() => seen.length === 4, 5_000, "every turn");
      await A.guard.onIdle();
      expect(seen.map((turn) => [turn.by, turn.inputs])).toEqual([
        ["A", ["first"]],
        ["A", ["c1"]],
        ["A", ["q"]],
        ["A", ["c2", "c3"]],
      ]);
      expect([...A.errors, ...B.errors]).toEqual([]);
    });

    it("timeout: an overdue turn at A hands its work to the turn of B's input", async () => {
      const seen: Seen[] = [];
      const queued = deferred();
      const A = replica("A", {
        turnTimeout: 1_500,
        handler: async (turn) => {
          const record: Seen = {
            by: "A",
            fence: turn.fence,
            inputs: turn.inputs.map((m) => m.text),
            carried: turn.carried,
            heard: [],
          };
          seen.push(record);
          if (turn.inputs[0]?.text !== "slow") return;
          turn.carry({ step: 3 });
          // B's input waits before the deadline passes (otherwise the key would be released).
          await queued.promise;
          await aborted(turn.signal);
          record.aborted = codeOf(turn.signal);
        },
      });
      const B = replica("B", { handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "slow" })).toBe("started");
      expect(await B.guard.submit("chat", { text: "next" })).toBe("queued");
      queued.resolve();
      await eventually(() => seen.length === 2, 5_000, "the next turn");
      await A.guard.onIdle();
      expect(seen[0]?.aborted).toBe("timeout");
      expect(seen[1]).toMatchObject({
        inputs: ["next"],
        carried: [{ value: { step: 3 }, fence: seen[0]?.fence, reason: "timeout" }],
      });
    });

    it("lease-lost: A's store dies under its turn; B takes the key over with what A carried", async () => {
      const seen: Seen[] = [];
      const A = replica("A", { handler: handler("A", seen, { question: ["tool call 1 done"] }) });
      const B = replica("B", { handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "question" })).toBe("started");
      await written("chat", "tool call 1 done");
      expect(await B.guard.submit("chat", { text: "hello?" })).toBe("queued");
      await killStore(A.store);
      await eventually(() => seen.some((turn) => turn.by === "B"), LEASE * 4, "the takeover");
      const taken = seen.find((turn) => turn.by === "B");
      expect(taken).toMatchObject({
        inputs: ["question", "hello?"],
        carried: [{ value: "tool call 1 done", fence: seen[0]?.fence, reason: "lease-lost" }],
      });
      expect(taken?.fence).toBeGreaterThan(seen[0]?.fence ?? Number.POSITIVE_INFINITY);
      await B.guard.onIdle();
      await eventually(
        async () => (await leftovers(db.admin, prefix)).length === 0,
        3_000,
        "release",
      );
    });

    it("shutdown: A's close() hands the key and its carried work to B", async () => {
      const seen: Seen[] = [];
      const A = replica("A", { handler: handler("A", seen, { question: ["partial"] }) });
      const B = replica("B", { handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "question" })).toBe("started");
      expect(await B.guard.submit("chat", { text: "more" })).toBe("queued");
      await A.guard.close({ timeout: 50 });
      await eventually(() => seen.length === 2, 5_000, "the hand-over");
      expect(seen[0]?.aborted).toBe("shutdown");
      expect(seen[1]).toMatchObject({
        by: "B",
        inputs: ["more"],
        carried: [{ value: "partial", fence: seen[0]?.fence, reason: "shutdown" }],
      });
      await B.guard.onIdle();
    });

    it("the accumulated order across replicas: superseded at A, then handed over to B on close", async () => {
      const seen: Seen[] = [];
      const plan = { one: ["work 1"], two: ["work 2"] };
      // Interrupt unless the input asks otherwise.
      const mode = (input: Msg): Mode => input.mode ?? "interrupt";
      const A = replica("A", { mode, handler: handler("A", seen, plan) });
      const B = replica("B", { mode, handler: handler("B", seen, plan) });
      expect(await A.guard.submit("chat", { text: "one" })).toBe("started");
      await written("chat", "work 1");
      expect(await B.guard.submit("chat", { text: "two" })).toBe("queued"); // supersedes "one"
      await eventually(() => seen.length === 2, 5_000, "the second turn");
      await written("chat", "work 2");
      expect(await B.guard.submit("chat", { text: "three", mode: "collect" })).toBe("queued");
      await A.guard.close({ timeout: 50 });
      await eventually(() => seen.length === 3, 5_000, "the hand-over");
      await B.guard.onIdle();
      const [one, two, three] = seen;
      expect(two?.carried).toEqual([{ value: "work 1", fence: one?.fence, reason: "superseded" }]);
      expect(three).toMatchObject({ by: "B", inputs: ["three"] });
      expect(three?.carried).toEqual([
        { value: "work 1", fence: one?.fence, reason: "superseded" },
        { value: "work 2", fence: two?.fence, reason: "shutdown" },
      ]);
      // B's turn ended well: the next turn starts from nothing.
      await B.guard.submit("chat", { text: "four" });
      await B.guard.onIdle();
      expect(seen[3]?.carried).toEqual([]);
    });

    it("a turn that ends well or is stopped discards what it and earlier turns carried", async () => {
      const seen: Seen[] = [];
      const finishing = deferred();
      const A = replica("A", {
        handler: async (turn) => {
          const text = turn.inputs[0]?.text;
          const record: Seen = {
            by: "A",
            fence: turn.fence,
            inputs: turn.inputs.map((m) => m.text),
            carried: turn.carried,
            heard: [],
          };
          seen.push(record);
          if (text === "ends well") {
            turn.carry("never handed on");
            await finishing.promise;
          } else if (text === "stopped") {
            turn.carry("never handed on either");
            await aborted(turn.signal);
            record.aborted = codeOf(turn.signal);
          }
        },
      });
      const B = replica("B", { handler: handler("B", seen, {}) });
      expect(await A.guard.submit("chat", { text: "ends well" })).toBe("started");
      await written("chat", "never handed on");
      expect(await B.guard.submit("chat", { text: "after it" })).toBe("queued");
      finishing.resolve();
      await eventually(() => seen.length === 2, 5_000, "the next turn");
      expect(seen[1]).toMatchObject({ inputs: ["after it"], carried: [] });
      await A.guard.onIdle();
      expect(await A.guard.submit("chat", { text: "stopped" })).toBe("started");
      await written("chat", "never handed on either");
      await B.guard.stop("chat");
      await eventually(() => seen[2]?.aborted !== undefined, 5_000, "the stop");
      expect(seen[2]?.aborted).toBe("stopped");
      await A.guard.onIdle();
      // Released: the carry list went with the key.
      await eventually(
        async () => (await leftovers(db.admin, prefix)).length === 0,
        3_000,
        "release",
      );
      await A.guard.submit("chat", { text: "later" });
      await A.guard.onIdle();
      expect(seen[3]).toMatchObject({ inputs: ["later"], carried: [] });
    });

    it("lease-lost after a SIGKILL: the forked holder dies mid-turn; B's turn gets what it carried before the kill", async () => {
      const child: ChildProcess = fork(SCRIPT, [], {
        execArgv: ["--import", "tsx"],
        env: {
          ...process.env,
          SG_TARGET: JSON.stringify(db.target),
          SG_CLIENT: kind.name,
          SG_PREFIX: prefix,
          SG_LEASE: String(LEASE),
        },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      open.push({
        close: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        },
      });
      const events: FromReplica[] = [];
      child.on("message", (message: FromReplica) => void events.push(message));
      await eventually(() => events.some((e) => e.type === "ready"), 20_000, "the forked replica");
      const submit: ToReplica = {
        type: "submit",
        key: "chat",
        id: "q1",
        work: 60_000,
        local: false,
        carry: "draft before the kill",
      };
      child.send(submit);
      await eventually(
        () => events.some((e) => e.type === "start" && e.key === "chat"),
        5_000,
        "A's turn",
      );
      const started = events.find((e) => e.type === "start" && e.key === "chat") as Extract<
        FromReplica,
        { type: "start" }
      >;
      await written("chat", "draft before the kill");
      const seen: { inputs: unknown[]; carried: readonly Carried[]; fence: number }[] = [];
      const B = replica("B", {
        handler: (turn) => {
          seen.push({ inputs: [...turn.inputs], carried: turn.carried, fence: turn.fence });
        },
      });
      expect(await B.guard.submit("chat", { text: "hello?" })).toBe("queued");
      child.kill("SIGKILL");
      await eventually(() => seen.length > 0, LEASE * 4, "the takeover");
      expect(seen[0]?.inputs).toEqual([
        { id: "q1", work: 60_000, carry: "draft before the kill" },
        { text: "hello?" },
      ]);
      expect(seen[0]?.carried).toEqual([
        { value: "draft before the kill", fence: started.fence, reason: "lease-lost" },
      ]);
      expect(seen[0]?.fence).toBeGreaterThan(started.fence);
      await B.guard.onIdle();
      // Released: nothing is left but the de-duplication id of "q1" (which lives its window).
      const state = async () =>
        (await leftovers(db.admin, prefix)).filter((name) => !name.includes("}d:"));
      await eventually(async () => (await state()).length === 0, 3_000, "release");
    });
  },
);
