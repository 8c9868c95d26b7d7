// Stand-ins for the reader's own code, declared once for every ```ts block of README.md and
// docs/ (checked by scripts/check-docs.mjs): your agent, and your platform's credentials.
// Anything else a block needs it declares itself.

/** Your agent: runs one turn's prompt and stops when `signal` aborts. */
declare function agent(prompt: string, options: { signal: AbortSignal }): Promise<string>;
/** A bot token (Telegram, Slack, Discord). */
declare const token: string;
/** Slack's signing secret, for Bolt's HTTP receiver. */
declare const signingSecret: string;
