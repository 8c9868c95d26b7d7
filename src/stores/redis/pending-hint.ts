// === The "p" hint: input is pending for a turn held at the replica that hears it
//
//   "p|<token>|<pending>|<key>"      (format.ts)
//
// A count written "+<pending>" marks an input admitted in `interrupt` mode (a mode chosen per
// input): the holder aborts its turn whatever its own mode. An older replica reads Number("+3") as
// 3, as before.

/** A "p" hint's parts. */
export interface PendingHint {
  readonly token: string;
  readonly pending: number;
  readonly interrupt: boolean;
  readonly key: string;
}

export function readPendingHint(message: string): PendingHint {
  const a = message.indexOf("|", 2);
  const b = message.indexOf("|", a + 1);
  return {
    token: message.slice(2, a),
    pending: Number(message.slice(a + 1, b)),
    interrupt: message.charCodeAt(a + 1) === 43,
    key: message.slice(b + 1),
  };
}
