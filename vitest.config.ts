import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const source = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests import the package by its name, as users do; resolve it to the sources.
    alias: [
      { find: /^session-guard$/, replacement: source("./src/index.ts") },
      {
        find: /^session-guard\/(grammy|slack|discord)$/,
        replacement: source("./adapters/$1/index.ts"),
      },
      { find: /^session-guard\/redis$/, replacement: source("./src/stores/redis/index.ts") },
      { find: /^session-guard\/otel$/, replacement: source("./src/otel/index.ts") },
    ],
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
  },
});
