// === A store answer, synchronous or not
//
// Stores may answer synchronously (the memory store, which keeps the uncontended path free of
// promises) or with a promise (a networked store). This takes either without making a promise
// where there was none.

/** Call `onValue` with a store answer: at once when it is not a promise. */
export function settleWith<T>(
  value: T | Promise<T>,
  onValue: (value: T) => void,
  onError: (error: unknown) => void,
): void {
  if (value instanceof Promise) value.then(onValue, onError);
  else onValue(value);
}
