// The records behind `outcome(id)` and de-duplication, in the memory store's ledger.
//
// An input that is still pending or running is never forgotten by the memory store's ledger: not
// when the ids of other inputs push past `maxIds`, not when its de-duplication window ends before
// its turn does. Its outcome stays answerable and a redelivery of it stays a duplicate; once it has
// ended, the window and the cap apply as before. (Found by a tarball adversary: both let the same
// message run twice, and `outcome()` answered "never admitted" for a running input.) And an id
// admitted again whose new input is refused as it arrives answers that refusal, not the earlier
// input's end (found by the next one).

import { createGuard, type Guard, memoryStore, type Turn } from "session-guard";
import { describe, expect, it } from "vitest";
import { deferred, sleep } from "./support/helpers.js";

describe("the ids of live inputs", () => {
  it("survive the maxIds cap: outcomes answer and redeliveries are duplicates", async () => {
    const store = memoryStore({ maxIds: 3 });
    const guard = createGuard<string>({ store });
    const gate = deferred();
    const ran: string[] = [];
    const run = async (turn: Turn<string>) => {
      ran.push(...turn.inputs);
      if (turn.inputs.includes("R")) await gate.promise;
    };
    expect(await guard.submit("hot", "R", run, { id: "R" })).toBe("started");
    expect(await guard.submit("hot", "P", run, { id: "P" })).toBe("queued");
    for (let i = 0; i < 10; i++) await guard.submit(`other${i}`, `n${i}`, run, { id: `n${i}` });
    expect(await guard.outcome("R")).toMatchObject({ state: "running" });
    expect(await guard.outcome("P")).toMatchObject({ state: "pending" });
    expect(await guard.submit("hot", "R again", run, { id: "R" })).toBe("duplicate");
    expect(await guard.submit("hot", "P again", run, { id: "P" })).toBe("duplicate");
    // The cap holds for everything else: the two live records and the newest of the rest.
    expect(store.idCount).toBeLessThanOrEqual(3 + 2);
    gate.resolve();
    await guard.onIdle();
    expect(ran.filter((input) => input.startsWith("R") || input.startsWith("P"))).toEqual([
      "R",
      "P",
    ]);
    expect(await guard.outcome("P")).toMatchObject({ state: "handled" });
  });

  it("outlive their window while they wait or run; once ended, the window applies", async () => {
    const guard = createGuard<string>({ dedupe: 40 });
    const ran: string[] = [];
    const run = async (turn: Turn<string>) => {
      ran.push(...turn.inputs);
      await sleep(150);
    };
    expect(await guard.submit("k", "A", run, { id: "A" })).toBe("started");
    expect(await guard.submit("k", "B", run, { id: "B" })).toBe("queued");
    await sleep(80); // both windows have ended; A runs, B waits
    expect(await guard.submit("k", "A again", run, { id: "A" })).toBe("duplicate");
    expect(await guard.submit("k", "B again", run, { id: "B" })).toBe("duplicate");
    expect(await guard.outcome("A")).toMatchObject({ state: "running", fence: 1 });
    await guard.onIdle();
    expect(ran).toEqual(["A", "B"]);
    await sleep(60); // B's record is final now, and its window has passed
    expect(await guard.submit("k", "B later", run, { id: "B" })).toBe("started");
    await guard.onIdle();
    expect(ran).toEqual(["A", "B", "B later"]);
  });

  it("more live inputs than the cap: every one stays a duplicate, the rest still go", async () => {
    const store = memoryStore({ maxIds: 4 });
    const guard = createGuard<string>({ store, mode: "queue", maxPending: 100 });
    const gate = deferred();
    const ran: string[] = [];
    const run = async (turn: Turn<string>) => {
      ran.push(...turn.inputs);
      await gate.promise;
    };
    for (let i = 0; i < 40; i++) await guard.submit("k", `m${i}`, run, { id: `m${i}` });
    for (let i = 0; i < 40; i++) {
      expect(await guard.submit("k", `m${i} again`, run, { id: `m${i}` })).toBe("duplicate");
    }
    // Ids of inputs that ended still go past the cap: the ledger holds no more than 1.25 × the
    // live ones (those that ended between them wait to go), however many more come.
    for (let i = 0; i < 400; i++) {
      await guard.submit(`x${i}`, `x${i}`, async () => {}, { id: `x${i}` });
      expect(store.idCount).toBeLessThanOrEqual(40 * 1.25 + 1);
    }
    gate.resolve();
    await guard.onIdle();
    expect(ran).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
  });
});

/**
 * `id` comes again while key k is held (the guard is in `reject` mode): it is refused as `busy`,
 * and that refusal is the id's outcome. Lets k go afterwards.
 */
async function refusedWhileBusy(guard: Guard<string>, id: string): Promise<void> {
  const gate = deferred();
  await guard.submit("k", "holder", () => gate.promise);
  expect(await guard.submit("k", `${id} again`, async () => {}, { id })).toBe("dropped");
  expect(await guard.outcome(id)).toMatchObject({ state: "dropped", reason: "busy" });
  gate.resolve();
  await guard.onIdle();
}

describe("an id admitted again, and refused as it arrives", () => {
  it("answers the newest input's outcome, as the settled event said", async () => {
    const guard = createGuard<string>({ mode: "reject", dedupe: 20 });
    const settled: string[] = [];
    guard.on("settled", ({ id, outcome }) => {
      if (id !== undefined) settled.push(`${id} ${outcome.state}`);
    });
    const gate = deferred();
    await guard.submit("k", "holder", () => gate.promise);
    expect(await guard.submit("k", "B", async () => {}, { id: "B" })).toBe("dropped");
    const first = await guard.outcome("B");
    expect(first).toMatchObject({ state: "dropped", reason: "busy" });
    await sleep(40); // past the window: B may come again
    expect(await guard.submit("k", "B again", async () => {}, { id: "B" })).toBe("dropped");
    const second = await guard.outcome("B");
    expect(second).toMatchObject({ state: "dropped", reason: "busy" });
    expect(second?.at).toBeGreaterThan(first?.at as number);
    gate.resolve();
    await guard.onIdle();
    expect(settled).toEqual(["B dropped", "B dropped"]);
  });

  it("a failed awaited input's retry that is refused replaces the failure", async () => {
    const guard = createGuard<string>({ mode: "reject", onError: () => {} });
    await expect(
      guard.submit("k", "A", async () => Promise.reject(new Error("boom")), {
        id: "A",
        awaitTurn: true,
      }),
    ).rejects.toThrow("boom");
    expect(await guard.outcome("A")).toMatchObject({ state: "failed" });
    // The failure forgot A's id (so that it can be retried): the retry comes while k is busy.
    await refusedWhileBusy(guard, "A");
  });

  it("a redelivery refused before de-duplication (a closed guard's door, already expired) leaves a live input's record alone", async () => {
    const guard = createGuard<string>();
    const gate = deferred();
    await guard.submit("k", "A", () => gate.promise, { id: "A" });
    const expired = { id: "A", expiresAt: Date.now() - 1 };
    expect(await guard.submit("k", "A expired", async () => {}, expired)).toBe("dropped");
    expect(await guard.outcome("A")).toMatchObject({ state: "running" });
    const closing = guard.close({ timeout: 10_000 });
    expect(await guard.submit("k", "A again", async () => {}, { id: "A" })).toBe("dropped");
    expect(await guard.outcome("A")).toMatchObject({ state: "running" });
    gate.resolve();
    await closing;
    expect(await guard.outcome("A")).toMatchObject({ state: "handled" });
  });

  it("with dedupe off, the same id twice: the second input's end is the outcome", async () => {
    const guard = createGuard<string>({ mode: "reject", dedupe: false });
    await guard.submit("k", "A", async () => {}, { id: "A", awaitTurn: true });
    expect(await guard.outcome("A")).toMatchObject({ state: "handled" });
    await refusedWhileBusy(guard, "A");
  });
});
