// === A throwaway redis-server for the Redis benchmarks, and the workers that drive it
//
// Started on a unix socket in a temp dir, without persistence, and never outliving the process
// that started it. Used by measurement 5 (redis.ts) and by the side tools redis-outcomes.ts and
// redis-layers.ts.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sleep } from "./harness.js";

export interface LocalServer {
  readonly socket: string;
  readonly version: string;
  /** CPU time the server has used, in ms (user + system; Linux /proc), or NaN elsewhere. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat times. */
function clockTicks(): number {
  const probe = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const ticks = Number(probe.stdout);
  return probe.status === 0 && ticks > 0 ? ticks : 100;
}

function processCpuMs(pid: number | undefined, ticks: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which is in parentheses): utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
  } catch {
    return Number.NaN;
  }
}

/** The version of `redis-server` on PATH, or `undefined` when there is none. */
export function serverVersion(): string | undefined {
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (probe.error !== undefined || probe.status !== 0) return undefined;
  return /v=(\S+)/.exec(probe.stdout)?.[1] ?? probe.stdout.trim();
}

/** Start a throwaway `redis-server`; throws when it does not come up within 5 s. */
export async function startServer(version = serverVersion() ?? "unknown"): Promise<LocalServer> {
  const dir = mkdtempSync(join(tmpdir(), "sg-bench-redis-"));
  const socket = join(dir, "redis.sock");
  const args = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700"];
  args.push("--save", "", "--appendonly", "no", "--dir", dir);
  const child: ChildProcess = spawn("redis-server", args, { stdio: "ignore" });
  child.on("error", () => {}); // a failed start shows as no socket below
  // Never outlive the benchmark, even when it dies without stopping the server.
  const reap = () => child.kill("SIGKILL");
  process.once("exit", reap);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const until = Date.now() + 5_000;
  while (!existsSync(socket)) {
    if (child.exitCode !== null || Date.now() > until) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start (exit code ${child.exitCode})`);
    }
    await sleep(10);
  }
  const ticks = clockTicks();
  return {
    socket,
    version,
    cpuMs: () => processCpuMs(child.pid, ticks),
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      process.off("exit", reap);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run `count` operations on `inFlight` workers; worker `w` runs its `n`th as `op(w, n)`. */
export async function drive(
  count: number,
  inFlight: number,
  op: (worker: number, n: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const work = async (worker: number) => {
    for (let n = 0; next < count; n++) {
      next++;
      await op(worker, n);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, (_, w) => work(w)));
}
