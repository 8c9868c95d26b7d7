// === The typing heartbeat
//
// Platforms show "typing…" (Discord, Telegram) or an assistant status (Slack) for a few seconds
// after each request, so a turn that thinks for minutes renews it on a timer. One heartbeat per
// turn: sent at once, renewed every `every` ms until the turn settles. A platform that refuses it
// once refuses it again (no permission, not an assistant thread): the first failure is reported
// and the heartbeat stops for that turn; the turn itself runs on.

/** How an adapter renews its indicator. */
export interface Heartbeat {
  /** Show the indicator once. */
  send(): Promise<unknown>;
  /** Ms between renewals (shorter than the platform shows it for). */
  readonly every: number;
  /** Take the indicator down when the turn ends (Slack's status); optional. */
  clear?(): Promise<unknown>;
}

const NOOP = (): void => {};

/**
 * Start a heartbeat; returns the function that ends it. `report` receives the first failure.
 *
 * @example
 * ```ts
 * const stop = beat({ send: () => channel.sendTyping(), every: 8_000 }, report);
 * try { await handler(); } finally { stop(); }
 * ```
 */
export function beat(heartbeat: Heartbeat, report: (error: unknown) => void): () => void {
  let timer: ReturnType<typeof setInterval> | undefined;
  let failed = false;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    clearInterval(timer);
    report(error);
  };
  const send = () => {
    try {
      heartbeat.send().catch(fail);
    } catch (error) {
      fail(error);
    }
  };
  send();
  if (!failed) {
    timer = setInterval(send, heartbeat.every);
    timer.unref?.();
  }
  return () => {
    clearInterval(timer);
    if (!failed && heartbeat.clear !== undefined) {
      try {
        heartbeat.clear().catch(NOOP);
      } catch {
        // Taking the indicator down is best effort: it fades on its own.
      }
    }
  };
}

/**
 * Run `work` with a heartbeat, or without one when `heartbeat` is `undefined`.
 */
export async function withHeartbeat<T>(
  heartbeat: Heartbeat | undefined,
  report: (error: unknown) => void,
  work: () => T | PromiseLike<T>,
): Promise<T> {
  if (heartbeat === undefined) return work();
  const stop = beat(heartbeat, report);
  try {
    return await work();
  } finally {
    stop();
  }
}
