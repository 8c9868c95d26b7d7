// === Slash and context-menu commands, and stops
//
// An interaction needs a first response within 3 s and its token lasts 15 minutes. Every guarded
// command is deferred at admission, before it waits, so its handler always answers with
// `editReply`/`followUp`; one still waiting when its token is about to die is dropped (`expired`).
// A command dropped before it ran would show "thinking…" until its token dies: it is told why
// (`dropReply`), by the replica that drops it, through the guard's `dropped` event: this one for a
// command it deferred, another (the holder of the key, which learns of expiries and stops too)
// from the command it rebuilt from the stored payload. (Not through the submit's own `onDrop`: it
// is also called on the admitting replica when another one dropped the command, which already
// told the user.)

import type { Drop, DropReason, Guard, Turn } from "session-guard";
import { isMessage } from "./keys.js";
import { TOKEN_LIFETIME } from "./options.js";
import type { Remote } from "./replay.js";
import type {
  CommandHandler,
  DiscordInput,
  DiscordMessage,
  DiscordTurn,
  GuardedCommand,
} from "./types.js";

/** What a deferred command is edited to when a shared store could not take it (Redis down). */
const REFUSED_REPLY = "This request could not be taken right now; please send it again.";
const DONE: Promise<void> = Promise.resolve();
const DEFERRED: Promise<boolean> = Promise.resolve(true);

/** Submit options of an input, as the adapter passes them to `admit`. */
export interface AdmitOptions {
  readonly id: string;
  readonly alone?: boolean;
  readonly expiresAt?: number;
  readonly onDrop?: ((drop: Drop<DiscordInput>) => void) | undefined;
}

export interface CommandHost {
  readonly guard: Guard<DiscordInput>;
  readonly remote: Remote | undefined;
  readonly ephemeral: boolean;
  readonly expiryMargin: number;
  readonly stopCommands: ReadonlySet<string>;
  readonly onStop:
    | ((source: DiscordMessage | GuardedCommand, stopped: boolean) => unknown)
    | undefined;
  readonly dropReply:
    | ((reason: DropReason, interaction: GuardedCommand) => string | undefined)
    | undefined;
  keyOf(input: GuardedCommand): string | undefined;
  report(error: unknown, key: string, input?: DiscordInput): void;
  /** Submit one input; a refused admission is reported (then `onRefused` runs), never thrown. */
  admit(
    key: string | undefined,
    input: DiscordInput,
    run: (turn: Turn<DiscordInput>) => unknown,
    options: AdmitOptions,
    onRefused?: () => void,
  ): Promise<void>;
}

/** The command side of the adapter. */
export function commands(host: CommandHost) {
  const { guard, remote, ephemeral, expiryMargin, stopCommands, onStop, dropReply, report } = host;
  /** Commands rebuilt here from another replica's payload (deferred there). */
  const revived = new WeakSet<object>();
  /** Commands admitted here, with their deferral, while they may be dropped. */
  const deferrals = new WeakMap<object, Promise<boolean>>();

  /** Tell a deferred command that was dropped before it ran why, while its token lives. */
  const noticeDrop = (
    reason: DropReason,
    key: string,
    interaction: GuardedCommand,
    deferral: Promise<boolean>,
  ): void => {
    if (dropReply === undefined) return;
    let text: string | undefined;
    try {
      text = dropReply(reason, interaction);
    } catch (error) {
      report(error, key, interaction);
      return;
    }
    if (text === undefined) return;
    deferral
      .then((deferred) => {
        if (!deferred || Date.now() >= interaction.createdTimestamp + TOKEN_LIFETIME) return;
        return interaction.editReply({ content: text });
      })
      .catch((error: unknown) => report(error, key, interaction));
  };
  if (dropReply !== undefined) {
    guard.on("dropped", (drop) => {
      const input = drop.input as object;
      const deferral = revived.has(input) ? DEFERRED : deferrals.get(input);
      if (deferral !== undefined) {
        noticeDrop(drop.reason, drop.key, drop.input as GuardedCommand, deferral);
      }
    });
  }

  /** Stop the key, then answer the stop (`onStop`, or the default reply to a stop command). */
  const stopFrom = async (source: DiscordMessage | GuardedCommand, key: string): Promise<void> => {
    let stopped = false;
    try {
      // The stop carries its message's or interaction's id: a second delivery of it (a wrapper
      // registered twice, another replica) must not stop a later turn.
      const id = `dc:${source.client.user?.id ?? "-"}:${source.id}`;
      stopped = await guard.stop(key, { id });
    } catch (error) {
      report(error, key, source);
    }
    try {
      if (onStop !== undefined) await onStop(source, stopped);
      else if (!isMessage(source)) {
        await source.reply({
          content: stopped ? "Stopped." : "Nothing to stop.",
          ...(ephemeral ? { flags: "Ephemeral" as const } : {}),
        });
      }
    } catch (error) {
      report(error, key, source);
    }
  };

  /** Admit a guarded command: stop, drop at once if its token is too old, else defer and submit. */
  const admitCommand = <T extends GuardedCommand>(
    interaction: T,
    handler: CommandHandler<T>,
  ): Promise<void> => {
    if (remote?.replays.has(interaction)) {
      // A turn of this replica running a command admitted elsewhere: run it, never re-admit it.
      // (Another guarded wrapper the routing also reaches leaves it alone.)
      const turn = remote.replays.attach(interaction);
      if (turn === undefined) return DONE;
      return remote.replays.settle(
        interaction,
        handler(interaction, turn as unknown as DiscordTurn<T>),
      );
    }
    const raw = remote?.take(interaction.id);
    const key = host.keyOf(interaction);
    if (key === undefined) return DONE;
    if (stopCommands.has(interaction.commandName)) return stopFrom(interaction, key);
    const id = `dc:${interaction.client.user?.id ?? "-"}:${interaction.id}`;
    const expiresAt = interaction.createdTimestamp + TOKEN_LIFETIME - expiryMargin;
    if (expiresAt <= Date.now()) {
      guard.reportDrop({ key, input: interaction, id, reason: "expired" });
      return DONE;
    }
    remote?.keep(interaction, raw);
    // Answer Discord now (3 s), whether the command runs at once or waits; the turn starts its
    // handler only once the deferral went through, so `editReply` always works there.
    const deferral = interaction.deferReply(ephemeral ? { flags: "Ephemeral" } : {}).then(
      () => true,
      (error: unknown) => {
        if (remote !== undefined && (error as { code?: unknown } | null)?.code === 40060) {
          // "Already acknowledged": another process received the same interaction and took it.
          guard.reportDrop({ key, input: interaction, id, reason: "duplicate" });
        } else report(error, key, interaction);
        return false;
      },
    );
    const run = async (turn: Turn<DiscordInput>) => {
      // Without a deferral the interaction cannot be answered; the failure was reported.
      if (await deferral) return handler(interaction, turn as unknown as DiscordTurn<T>);
    };
    if (dropReply !== undefined) deferrals.set(interaction, deferral);
    const options = { id, alone: true, expiresAt };
    if (remote === undefined) return host.admit(key, interaction, run, options);
    // Another replica may run it, relying on the deferral: store it only once deferred. (Input
    // of its channel that arrives meanwhile may be admitted before it.) Discord never redelivers
    // an interaction, so one the store refused is told to send it again.
    const refused = () => {
      if (dropReply === undefined) return;
      interaction
        .editReply({ content: REFUSED_REPLY })
        .catch((error: unknown) => report(error, key, interaction));
    };
    return deferral.then((deferred) =>
      deferred ? host.admit(key, interaction, run, options, refused) : DONE,
    );
  };

  return {
    admitCommand,
    stopFrom,
    /** A command rebuilt from another replica's payload: that replica deferred it. */
    deferred(interaction: GuardedCommand): void {
      interaction.deferred = true;
      interaction.ephemeral = ephemeral;
      revived.add(interaction);
    },
  };
}
