import { defineConfig } from "tsup";

// Entry points of the package; adapters are added here as they land.
const entry = { index: "src/index.ts" };

export default defineConfig([
  {
    entry,
    format: ["esm"],
    dts: true,
    clean: true,
    target: "node20",
    sourcemap: true,
  },
  {
    entry,
    format: ["cjs"],
    dts: true,
    target: "node20",
    sourcemap: true,
    // p-limit is ESM-only; the CommonJS build inlines it so `require("session-guard")`
    // works on every Node 20 release, not only those with require(esm).
    noExternal: ["p-limit"],
  },
]);
