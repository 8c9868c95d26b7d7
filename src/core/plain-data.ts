// === Plain JSON data: what may travel between replicas (inputs without a codec, carried work)

/**
 * Why `value` is not data that `JSON.stringify` keeps as it is (primitives, finite numbers, arrays
 * and plain objects, all the way down), or `undefined` when it is. A value that JSON would change
 * on its way to another replica — a nested `NaN` or `undefined`, a `toJSON`, a symbol key, a class
 * instance — is refused, not silently altered: what a handler sees must not depend on which
 * replica runs the turn. (−0 arrives as 0.)
 */
export function notPlainData(
  value: unknown,
  path: string,
  ancestors: object[] = [],
): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : `${path} is ${value}`;
    case "object": {
      if (value === null) return undefined;
      if (ancestors.includes(value)) return `${path} refers to itself`;
      ancestors.push(value);
      const problem = Array.isArray(value)
        ? notPlainArray(value, path, ancestors)
        : notPlainObject(value, path, ancestors);
      ancestors.pop();
      return problem;
    }
    default:
      return `${path} is ${value === undefined ? "undefined" : `a ${typeof value}`}`;
  }
}

function notPlainArray(value: unknown[], path: string, ancestors: object[]): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const problem = notPlainData(value[i], `${path}[${i}]`, ancestors);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function notPlainObject(value: object, path: string, ancestors: object[]): string | undefined {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    return `${path} is an instance of ${value.constructor?.name ?? "a class"}`;
  }
  if (Object.getOwnPropertySymbols(value).length > 0) return `${path} has symbol keys`;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return `${path} has toJSON`;
  for (const [name, item] of Object.entries(value)) {
    const problem = notPlainData(item, `${path}.${name}`, ancestors);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
