// Several real replica processes on one Redis (test/support/redis-replica.ts, forked with tsx), for both
// clients: random routing with duplicates under an overlap oracle, SIGKILL and SIGSTOP of the
// holder, and graceful hand-over. Times are wall-clock, measured from the signal or the close.

import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  CLIENTS,
  type ClientKind,
  cleanUp,
  eventually,
  leftovers,
  redisAvailable,
  testPrefix,
  useRedis,
} from "./support/redis-harness.js";
import type { FromReplica, ToReplica } from "./support/redis-replica.js";

const SCRIPT = fileURLToPath(new URL("./support/redis-replica.ts", import.meta.url));
const LEASE = 500;

/** The suite's Redis (`db.target`, `db.admin`), connected before and disposed after it. */
const db = useRedis();

type Turn = Extract<FromReplica, { type: "start" }> & {
  end?: Extract<FromReplica, { type: "end" }>;
};

/** A forked replica and everything it reported. */
class Replica {
  readonly events: FromReplica[] = [];
  readonly child: ChildProcess;
  #listeners = new Set<() => void>();

  constructor(env: Record<string, string>) {
    this.child = fork(SCRIPT, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, ...env },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.child.on("message", (message: FromReplica) => {
      this.events.push(message);
      for (const listener of [...this.#listeners]) listener();
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  send(message: ToReplica): void {
    this.child.send(message);
  }

  /** The first event matching `match`, now or when it arrives. */
  when<T extends FromReplica>(match: (event: FromReplica) => event is T, ms?: number): Promise<T>;
  when(match: (event: FromReplica) => boolean, ms?: number): Promise<FromReplica>;
  when(match: (event: FromReplica) => boolean, ms = 10_000): Promise<FromReplica> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.events.find(match);
        if (found === undefined) return false;
        this.#listeners.delete(check);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(check);
        reject(new Error(`replica ${this.pid}: no matching event within ${ms} ms`));
      }, ms);
      if (!check()) this.#listeners.add(check);
    });
  }

  turns(): Turn[] {
    const turns: Turn[] = [];
    for (const event of this.events) {
      if (event.type === "start") turns.push({ ...event });
      if (event.type === "end") {
        const turn = turns.find((t) => t.key === event.key && t.fence === event.fence && !t.end);
        if (turn) turn.end = event;
      }
    }
    return turns.filter((t) => !t.key.startsWith("warm-up:"));
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

describe.skipIf(!redisAvailable).each(CLIENTS)("replica processes with $name", ({ name }) => {
  let prefix: string;
  let replicas: Replica[] = [];

  afterEach(async () => {
    for (const replica of replicas) {
      if (replica.child.exitCode === null && replica.child.signalCode === null) {
        replica.kill("SIGCONT");
        replica.kill("SIGKILL");
      }
    }
    replicas = [];
    await cleanUp(db.admin, prefix);
  });

  async function start(count: number, kind: ClientKind = name, lease = LEASE): Promise<Replica[]> {
    const env = {
      SG_TARGET: JSON.stringify(db.target),
      SG_CLIENT: kind,
      SG_PREFIX: prefix,
      SG_LEASE: String(lease),
    };
    const started = Array.from({ length: count }, () => new Replica(env));
    replicas.push(...started);
    await Promise.all(started.map((r) => r.when((e) => e.type === "ready", 20_000)));
    return started;
  }

  const started = (key: string, id?: string) => (e: FromReplica) =>
    e.type === "start" && e.key === key && (id === undefined || e.ids.includes(id));

  it("G1 under random routing and duplicates: no overlap per key, every input once, nothing stranded", async () => {
    prefix = testPrefix();
    const procs = await start(3);
    const keys = ["k0", "k1", "k2", "k3"];
    const sent: { id: string; key: string; copies: number }[] = [];
    let seq = 0;
    const pick = () => procs[Math.floor(Math.random() * procs.length)] as Replica;
    for (let i = 0; i < 48; i++) {
      const key = keys[Math.floor(Math.random() * keys.length)] as string;
      const id = `i${++seq}`;
      // One turn outlives three leases: its renewals must keep everyone else out.
      const work = i === 5 ? LEASE * 3 : Math.floor(Math.random() * 40);
      const copies = i % 6 === 3 ? 2 : 1; // a redelivery, to another replica
      sent.push({ id, key, copies });
      const first = pick();
      first.send({ type: "submit", key, id, work, local: Math.random() < 0.5 });
      if (copies === 2) {
        const other = procs.find((p) => p !== first) as Replica;
        other.send({ type: "submit", key, id, work, local: true });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 25));
    }
    const all = () => procs.flatMap((p) => p.turns());
    const handled = () =>
      new Set(
        all()
          .filter((t) => t.end)
          .flatMap((t) => t.ids),
      );
    await eventually(() => sent.every((s) => handled().has(s.id)), 20_000, "every input handled");
    await eventually(
      async () => (await leftovers(db.admin, prefix)).every((k) => k.includes("}d:")),
      5_000,
      "no state left",
    );

    // Exactly once: every id in exactly one turn; every second copy dropped as a duplicate.
    const counts = new Map<string, number>();
    for (const turn of all()) for (const id of turn.ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const { id } of sent) expect(counts.get(id), id).toBe(1);
    const drops = procs.flatMap((p) => p.events.filter((e) => e.type === "drop"));
    expect(drops.map((d) => (d as { reason: string }).reason).every((r) => r === "duplicate")).toBe(
      true,
    );
    expect(drops).toHaveLength(sent.filter((s) => s.copies === 2).length);
    // No overlap per key, fences strictly increasing in time order, no turn aborted.
    for (const key of keys) {
      const turns = all()
        .filter((t) => t.key === key)
        .sort((x, y) => (x.order as number) - (y.order as number));
      for (let i = 1; i < turns.length; i++) {
        const before = turns[i - 1] as Turn;
        const after = turns[i] as Turn;
        // Ordered by one count in Redis, not by the replicas' clocks (which may disagree by ms).
        expect(
          after.order,
          `${key}: turn ${after.fence} started before ${before.fence} ended`,
        ).toBeGreaterThan(before.end?.order as number);
        expect(after.fence).toBeGreaterThan(before.fence);
      }
      for (const turn of turns) expect(turn.end).toMatchObject({ aborted: null, stale: false });
    }
    // Inputs admitted elsewhere ran through the handler; some ran through their own closure.
    expect(all().some((t) => !t.local)).toBe(true);
    expect(procs.flatMap((p) => p.events.filter((e) => e.type === "error"))).toEqual([]);
  }, 40_000);

  it("random routing with a replica SIGKILLed midway: every acknowledged input runs at least once, no overlap among live turns, nothing stranded", async () => {
    prefix = testPrefix();
    const procs = await start(3);
    const [a, b, c] = procs as [Replica, Replica, Replica];
    const keys = ["k0", "k1", "k2"];
    const sent: { id: string; key: string; work: number; to: Replica }[] = [];
    let killedAt = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 40; i++) {
      const key = keys[i % keys.length] as string;
      const id = `i${i}`;
      const work = 20 + Math.floor(Math.random() * 60);
      const alive = i < 20 ? procs : [a, b];
      const to = alive[Math.floor(Math.random() * alive.length)] as Replica;
      sent.push({ id, key, work, to });
      to.send({ type: "submit", key, id, work, local: Math.random() < 0.5 });
      if (i === 20) {
        killedAt = performance.timeOrigin + performance.now();
        c.kill("SIGKILL");
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
    }
    // What C did not acknowledge before dying, the platform redelivers (here: to A).
    const acked = (id: string, to: Replica) =>
      to.events.some((e) => e.type === "admitted" && e.id === id);
    for (const s of sent) {
      if (s.to === c && !acked(s.id, c)) {
        a.send({ type: "submit", key: s.key, id: s.id, work: s.work, local: true });
      }
    }
    const live = () => [a, b].flatMap((p) => p.turns());
    const ran = () => new Set([...live(), ...c.turns()].filter((t) => t.end).flatMap((t) => t.ids));
    await eventually(() => sent.every((s) => ran().has(s.id)), 20_000, "every input handled");
    await eventually(
      async () => (await leftovers(db.admin, prefix)).every((k) => k.includes("}d:")),
      5_000,
      "no state left",
    );
    // The killed replica's last turn ends (for the oracle) when it was killed.
    const turns = [
      ...live(),
      ...c.turns().map((t) => (t.end ? t : { ...t, end: { at: killedAt } as Turn["end"] })),
    ];
    for (const key of keys) {
      const ordered = turns.filter((t) => t.key === key).sort((x, y) => x.at - y.at);
      for (let i = 1; i < ordered.length; i++) {
        const before = ordered[i - 1] as Turn;
        const after = ordered[i] as Turn;
        expect(after.at, `${key}: overlap`).toBeGreaterThanOrEqual(before.end?.at as number);
        expect(after.fence).toBeGreaterThan(before.fence);
      }
    }
    const errors = [a, b].flatMap((p) => p.events.filter((e) => e.type === "error"));
    expect(errors).toEqual([]);
    // No drops other than redeliveries of what C had stored before it died.
    const drops = [a, b].flatMap((p) => p.events.filter((e) => e.type === "drop"));
    expect(drops.every((d) => d.type === "drop" && d.reason === "duplicate")).toBe(true);
  }, 40_000);

  it("SIGKILL of the holder: taken over within lease + 0.5 s, higher fence, the killed turn's input handed over", async () => {
    prefix = testPrefix();
    const [a, b] = (await start(2)) as [Replica, Replica];
    a.send({ type: "submit", key: "k", id: "a1", work: 60_000, local: true });
    const first = (await a.when(started("k", "a1"))) as Turn;
    b.send({ type: "submit", key: "k", id: "b1", work: 10, local: true });
    await b.when((e) => e.type === "admitted" && e.id === "b1");
    // Let a renewal or two happen, so the kill lands at a random point of the lease.
    await new Promise((resolve) => setTimeout(resolve, LEASE * 0.7));
    const killedAt = performance.timeOrigin + performance.now();
    a.kill("SIGKILL");
    const takeover = (await b.when(started("k", "b1"), 5_000)) as Turn;
    const took = takeover.at - killedAt;
    console.log(`[${name}] takeover after SIGKILL: ${took.toFixed(0)} ms (lease ${LEASE} ms)`);
    expect(took).toBeLessThan(LEASE + 500);
    expect(takeover.fence).toBeGreaterThan(first.fence);
    expect(takeover.ids).toEqual(["a1", "b1"]);
    await b.when((e) => e.type === "end" && e.key === "k");
  }, 30_000);

  it("SIGKILL of a holder within its first lease/3, nothing pending anywhere: another replica runs the killed turn's input within lease + sweep, without a new message (issue 18 item 11)", async () => {
    prefix = testPrefix();
    const [a, b] = (await start(2)) as [Replica, Replica];
    a.send({ type: "submit", key: "k", id: "a1", work: 60_000, local: true });
    const first = (await a.when(started("k", "a1"))) as Turn;
    // Before its first renewal (lease/3), with no input queued anywhere.
    const killedAt = performance.timeOrigin + performance.now();
    a.kill("SIGKILL");
    const rerun = (await b.when(started("k", "a1"), 5_000)) as Turn;
    const took = rerun.at - killedAt;
    console.log(`[${name}] killed before its first renewal, run again after ${took.toFixed(0)} ms`);
    // The lease, then B's next sweep (every lease; the first one 0.5–1.5 leases after start).
    expect(took).toBeLessThan(LEASE * 3 + 500);
    expect(rerun.fence).toBeGreaterThan(first.fence);
  }, 30_000);

  it("SIGSTOP past the lease, then SIGCONT: the other replica took over; the resumed turn is aborted and stale", async () => {
    prefix = testPrefix();
    const [a, b] = (await start(2)) as [Replica, Replica];
    a.send({ type: "submit", key: "k", id: "a1", work: 60_000, local: true });
    const first = (await a.when(started("k", "a1"))) as Turn;
    b.send({ type: "submit", key: "k", id: "b1", work: 100, local: true });
    await b.when((e) => e.type === "admitted" && e.id === "b1");
    a.kill("SIGSTOP");
    const takeover = (await b.when(started("k", "b1"), 5_000)) as Turn;
    expect(takeover.ids).toEqual(["a1", "b1"]);
    expect(takeover.fence).toBeGreaterThan(first.fence);
    a.kill("SIGCONT");
    const resumed = (await a.when((e) => e.type === "end" && e.key === "k", 5_000)) as Extract<
      FromReplica,
      { type: "end" }
    >;
    expect(resumed).toMatchObject({ fence: first.fence, aborted: "lease-lost", stale: true });
    expect(resumed.fence).toBeLessThan(takeover.fence);
    // B's turn was not disturbed by A's late finish.
    const end = (await b.when((e) => e.type === "end" && e.key === "k")) as Extract<
      FromReplica,
      { type: "end" }
    >;
    expect(end).toMatchObject({ aborted: null, stale: false });
    expect(a.events.some((e) => e.type === "error" && e.name === "AbortError")).toBe(true);
  }, 30_000);

  it("graceful close hands the key to the other replica at once", async () => {
    prefix = testPrefix();
    const lease = 5_000;
    const [a, b] = (await start(2, name, lease)) as [Replica, Replica];
    a.send({ type: "submit", key: "k", id: "a1", work: 300, local: true });
    await a.when(started("k", "a1"));
    b.send({ type: "submit", key: "k", id: "b1", work: 10, local: true });
    await b.when((e) => e.type === "admitted" && e.id === "b1");
    a.send({ type: "close", timeout: 5_000 });
    const ended = (await a.when((e) => e.type === "end" && e.key === "k")) as Extract<
      FromReplica,
      { type: "end" }
    >;
    const next = (await b.when(started("k", "b1"), lease)) as Turn;
    const took = next.at - ended.at;
    console.log(
      `[${name}] hand-over after graceful close: ${took.toFixed(0)} ms (lease ${lease} ms)`,
    );
    expect(took).toBeLessThan(300);
    // The turn that ran on A is not run again.
    expect(next.ids).toEqual(["b1"]);
    await a.when((e) => e.type === "closed");
  }, 30_000);
});
