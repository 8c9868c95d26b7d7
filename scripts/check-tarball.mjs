// Packs the package as npm would publish it, installs the tarball into a fresh project and imports
// it from ESM and CommonJS — the check that `exports`, the CJS build and the types really work for
// a user, not only inside this repository. The adapters need no framework at run time (they
// import only its types), so they load here without grammy installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const work = mkdtempSync(join(tmpdir(), "session-guard-pack-"));
const run = (command, args, cwd) =>
  execFileSync(command, args, { cwd, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" });

try {
  const [{ filename }] = JSON.parse(
    run("npm", ["pack", "--json", "--pack-destination", work], root),
  );
  writeFileSync(join(work, "package.json"), JSON.stringify({ name: "consumer", private: true }));
  run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--ignore-scripts", join(work, filename)],
    work,
  );

  const check = `
    const { createGuard, memoryStore, ContendedError } = SG;
    if (typeof GRAMMY.sessionGuard !== "function") throw new Error("session-guard/grammy: missing sessionGuard");
    if (typeof GRAMMY.sessionGuard({ mode: "queue" }).stop !== "function") throw new Error("sessionGuard() lacks the guard's methods");
    if (typeof SLACK.slackGuard !== "function") throw new Error("session-guard/slack: missing slackGuard");
    if (typeof DISCORD.discordGuard !== "function") throw new Error("session-guard/discord: missing discordGuard");
    if (typeof REDIS.redisStore !== "function") throw new Error("session-guard/redis: missing redisStore");
    if (typeof createGuard !== "function" || typeof memoryStore !== "function") throw new Error("missing exports");
    if (!(new ContendedError("k", 0) instanceof Error)) throw new Error("ContendedError is not an Error");
    const guard = createGuard({ concurrency: 2 });
    const seen = [];
    Promise.all([1, 2, 3].map((n) => guard.submit("k", n, (turn) => { seen.push(turn.inputs); })))
      .then(() => guard.onIdle())
      .then(() => { if (JSON.stringify(seen) !== "[[1],[2,3]]") throw new Error("unexpected turns " + JSON.stringify(seen)); console.log(FORMAT + " ok"); })
      .catch((error) => { console.error(error); process.exit(1); });
  `;
  writeFileSync(
    join(work, "esm.mjs"),
    `import * as SG from "session-guard"; import * as GRAMMY from "session-guard/grammy"; import * as SLACK from "session-guard/slack"; import * as DISCORD from "session-guard/discord"; import * as REDIS from "session-guard/redis"; const FORMAT = "esm";${check}`,
  );
  writeFileSync(
    join(work, "cjs.cjs"),
    `const SG = require("session-guard"); const GRAMMY = require("session-guard/grammy"); const SLACK = require("session-guard/slack"); const DISCORD = require("session-guard/discord"); const REDIS = require("session-guard/redis"); const FORMAT = "cjs";${check}`,
  );
  process.stdout.write(run("node", ["esm.mjs"], work));
  process.stdout.write(run("node", ["cjs.cjs"], work));

  // session-guard/otel needs its optional peer, @opentelemetry/api; everything above ran without it
  // (the core and the other entries never load it). Installed from this repository's copy: no
  // network. With no SDK registered the API is a no-op, so this checks loading and wiring only.
  run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--ignore-scripts",
      "--install-links",
      join(root, "node_modules", "@opentelemetry", "api"),
    ],
    work,
  );
  const otel = `
    if (typeof OTEL.instrumentGuard !== "function") throw new Error("session-guard/otel: missing instrumentGuard");
    const guard = SG.createGuard({ handler: () => {} });
    const stop = OTEL.instrumentGuard(guard, { name: "check" });
    guard.submit("k", 1)
      .then(() => guard.onIdle())
      .then(() => { stop(); console.log(FORMAT + " otel ok"); })
      .catch((error) => { console.error(error); process.exit(1); });
  `;
  writeFileSync(
    join(work, "otel.mjs"),
    `import * as SG from "session-guard"; import * as OTEL from "session-guard/otel"; const FORMAT = "esm";${otel}`,
  );
  writeFileSync(
    join(work, "otel.cjs"),
    `const SG = require("session-guard"); const OTEL = require("session-guard/otel"); const FORMAT = "cjs";${otel}`,
  );
  process.stdout.write(run("node", ["otel.mjs"], work));
  process.stdout.write(run("node", ["otel.cjs"], work));
} finally {
  rmSync(work, { recursive: true, force: true });
}
