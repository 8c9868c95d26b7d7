// === Builds side by side: the same guard contender from several builds of the package, in one run
//
// For finding what a change costs, not a measurement of the suite. Absolute rates move with the
// machine's load, so every build runs in the same process, alternating order round by round, and
// each is reported against the empty layer of the same round. A build is a directory holding
// `dist/` and the package's `package.json` (so that `session-guard/grammy` inside it resolves to its
// own core) and a `node_modules` link, for example:
//
//   npm run build && mkdir -p /tmp/sg-a && cp -r dist package.json /tmp/sg-a/ \
//     && ln -s "$PWD/node_modules" /tmp/sg-a/node_modules
//   (change, build again into /tmp/sg-b the same way, then)
//   TSX_TSCONFIG_PATH=bench/tsconfig.json node --expose-gc --import tsx bench/compare-builds.ts \
//     uncontended 5 '{"awaitTurn":true}' /tmp/sg-a /tmp/sg-b
//
// Arguments: the scenario of measurement 1 (uncontended, contended, flood), the rounds, the
// guard's options as JSON, then the build directories. `WINDOW=n` overrides the scenario's updates
// in flight: `WINDOW=1` delivers one update at a time, where no garbage-collection pause meets
// many live updates, so what remains is the guard's own CPU per update.

import { EMPTY_LAYER } from "./contenders.js";
import { SCENARIOS, type ScenarioName } from "./measure-throughput.js";
import { type Contender, rateLines, runScenario } from "./throughput.js";

const [scenarioName = "uncontended", roundsText = "5", optionsText = "{}", ...builds] =
  process.argv.slice(2);
const base = SCENARIOS[scenarioName as ScenarioName];
if (base === undefined || builds.length === 0) {
  throw new Error(
    "usage: compare-builds.ts <uncontended|contended|flood> <rounds> <options json> <build dir>...",
  );
}
const window = process.env.WINDOW === undefined ? base.window : Number(process.env.WINDOW);
const options = JSON.parse(optionsText) as Record<string, unknown>;
const contenders: Contender[] = [EMPTY_LAYER];
for (const [i, dir] of builds.entries()) {
  const adapter = (await import(`${dir}/dist/grammy.js`)) as typeof import("session-guard/grammy");
  contenders.push({
    name: `${i + 1}:${dir}`,
    label: dir,
    coalesces: options.mode === undefined || options.mode === "collect",
    install(bot) {
      const guard = adapter.sessionGuard(options);
      bot.use(guard);
      return options.awaitTurn === true ? undefined : () => guard.onIdle();
    },
  });
}
const result = await runScenario({ ...base, window, rounds: Number(roundsText), contenders });
console.log(`${scenarioName}, ${window} in flight, ${roundsText} rounds, options ${optionsText}`);
for (const line of rateLines(result, contenders, EMPTY_LAYER, "empty layer", 32)) console.log(line);
