// The adapter contract (test/support/adapter-contract.ts) against every adapter: grammY, Slack Bolt
// and discord.js, each through its driver on the real, offline framework object.

import { adapterContract } from "./support/adapter-contract.js";
import { discordDriver } from "./support/discord-driver.js";
import { grammyDriver } from "./support/grammy-driver.js";
import { slackDriver } from "./support/slack-driver.js";

adapterContract(grammyDriver);
adapterContract(slackDriver);
adapterContract(discordDriver);
