import { existsSync } from "node:fs";
import { defineConfig } from "tsup";

// Entry points of the package; one per adapter. (An adapter whose file is missing is skipped
// here and caught by publint, which checks every path of the exports map.)
const entries = {
  index: "src/index.ts",
  grammy: "adapters/grammy/index.ts",
  slack: "adapters/slack/index.ts",
  discord: "adapters/discord/index.ts",
  redis: "src/stores/redis/index.ts",
  otel: "src/otel/index.ts",
};
const entry = Object.fromEntries(Object.entries(entries).filter(([, path]) => existsSync(path)));

// Adapters import the core by the package's own name, so each build holds one copy of the core
// (one `instanceof` for errors, one guard state) and frameworks stay peer dependencies.
const external = [
  "session-guard",
  "grammy",
  "@slack/bolt",
  "discord.js",
  "redis",
  "ioredis",
  "@opentelemetry/api",
];

export default defineConfig([
  {
    entry,
    format: ["esm"],
    dts: true,
    clean: true,
    target: "node20",
    sourcemap: true,
    external,
  },
  {
    entry,
    format: ["cjs"],
    dts: true,
    target: "node20",
    sourcemap: true,
    external,
    // p-limit is ESM-only; the CommonJS build inlines it so `require("session-guard")`
    // works on every Node 20 release, not only those with require(esm).
    noExternal: ["p-limit"],
  },
]);
