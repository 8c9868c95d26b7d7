// === A small harness: timing, statistics, garbage collection, environment, a text table
//
// Every comparison runs its contenders side by side in one process, alternating, over several
// rounds: a shared machine drifts, so ratios taken within a round are the figures that travel.

import { readFileSync } from "node:fs";
import os from "node:os";

/** The median of some numbers (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The `p`th percentile of some numbers, interpolated between the closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const a = sorted[low] as number;
  const b = sorted[high] as number;
  return a + (b - a) * (rank - low);
}

/**
 * Rotate the contenders' order every round (A B C, B C A, C A B, …), so that none always runs
 * first, right after a collection, or right after another's garbage.
 */
export function rotation<T>(items: readonly T[], round: number): T[] {
  const shift = round % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** Resolves in a later macrotask, once every pending microtask has run. */
export function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Collect garbage until memory stops shrinking; answers heap plus ArrayBuffer bytes (`--expose-gc`). */
export async function settleHeap(): Promise<number> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error("Run the benchmarks with `node --expose-gc`.");
  let used = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    // Let pending callbacks and finalizers run between collections.
    await nextMacrotask();
    gc();
    // Typed arrays keep their contents outside the heap (the memory store's id log does).
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    const now = heapUsed + arrayBuffers;
    if (now >= used - 1024 && i >= 2) return now;
    used = Math.min(used, now);
  }
  return used;
}

/** Collect garbage once before a timed run, so one contender's garbage is not charged to the next. */
export async function collectBeforeRun(): Promise<void> {
  await nextMacrotask();
  globalThis.gc?.();
}

/** A promise that resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise and the function that resolves it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Version of an installed package, read from its package.json (exports hide it from import). */
export function installedVersion(name: string): string {
  const url = new URL(`../node_modules/${name}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(url, "utf8")) as { version: string }).version;
}

/** Where a function that throws was really loaded from (source maps bypassed). */
export function rawFileOf(thrower: () => unknown): string | undefined {
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (_error, sites) => sites.map((site) => site.getFileName());
  try {
    thrower();
  } catch (error) {
    return ((error as { stack: unknown }).stack as (string | undefined)[])[0];
  } finally {
    Error.prepareStackTrace = previous;
  }
  return undefined;
}

export interface Environment {
  node: string;
  v8: string;
  platform: string;
  cpu_model: string;
  cpus: number;
  loadavg_start: number[];
  grammy: string;
  runner: string;
}

export function environment(): Environment {
  const cpus = os.cpus();
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    cpu_model: cpus[0]?.model.trim() ?? "unknown",
    cpus: os.availableParallelism(),
    loadavg_start: os.loadavg().map(round2),
    grammy: installedVersion("grammy"),
    runner: installedVersion("@grammyjs/runner"),
  };
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Thousands separators for a readable table. */
export function fmt(value: number, digits = 0): string {
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A plain text table: the first column left-aligned, the others right-aligned. */
export function table(title: string, header: readonly string[], rows: readonly string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, column) =>
    Math.max(...all.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) =>
        column === 0
          ? cell.padEnd(widths[column] as number)
          : cell.padStart(widths[column] as number),
      )
      .join("  ");
  const rule = widths.map((width) => "-".repeat(width)).join("  ");
  return [title, line(header), rule, ...rows.map(line)].join("\n");
}

/** Progress goes to stderr, so stdout holds only the tables and the RESULT line. */
export function progress(message: string): void {
  process.stderr.write(`  ${message}\n`);
}
