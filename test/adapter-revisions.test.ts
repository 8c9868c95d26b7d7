// Issue 14's adapter contract (test/support/revision-contract.ts) against every adapter: grammY,
// Slack Bolt and discord.js, each through its driver on the real, offline framework object.

import { discordDriver } from "./support/discord-driver.js";
import { grammyDriver } from "./support/grammy-driver.js";
import { revisionContract } from "./support/revision-contract.js";
import { slackDriver } from "./support/slack-driver.js";

revisionContract(grammyDriver);
revisionContract(slackDriver);
revisionContract(discordDriver);
