import { RedscaleError } from '../common/errors.js';

/** Turns values into strings for Redis and back. */
export interface Serializer {
  /** Turns a value into the text stored in Redis; throws for a value it cannot round-trip. */
  serialize(value: unknown): string;
  /** Turns stored text back into a value. */
  deserialize(text: string): unknown;
}

/**
 * Turns values into bytes for Redis and back (msgpack, protobuf, CBOR…): `serialize` returns a
 * `Buffer` or `Uint8Array`, and `deserialize` receives a `Buffer`. Pass it to a cache through
 * {@link binarySerializer}.
 */
export interface BinarySerializer {
  /** Turns a value into the bytes stored in Redis; throws for a value it cannot round-trip. */
  serialize(value: unknown): Uint8Array;
  /** Turns stored bytes back into a value. */
  deserialize(bytes: Buffer): unknown;
}

/**
 * A binary serializer as a cache's `serializer`. Entries record that their payload is binary, so
 * a reader never hands bytes to a text serializer or text to this one.
 *
 * @example
 * ```ts
 * import { pack, unpack } from 'msgpackr'
 * const cache = new Cache({ redis, serializer: binarySerializer({ serialize: pack, deserialize: unpack }) })
 * ```
 */
export function binarySerializer(serializer: BinarySerializer): Serializer {
  // The cache hands `deserialize` the kind of data `serialize` produced, whatever the type says.
  BINARY.add(serializer);
  return serializer as unknown as Serializer;
}

const BINARY = new WeakSet<object>();

/** Whether a serializer was declared binary with {@link binarySerializer}. */
export function isBinarySerializer(serializer: object): boolean {
  return BINARY.has(serializer);
}

/**
 * JSON, the default serializer, made strict: it refuses every value that `JSON.parse` would not
 * give back as it was, so every instance reads the same value (a `Date` would come back a string,
 * a `Map` or `Set` an empty object, `NaN` `null`, an `undefined` property would vanish). Refused:
 * Date, Map, Set, RegExp, class instances and other non-plain objects, BigInt, NaN and ±Infinity,
 * `undefined` (top level, inside objects and arrays, and array holes), functions, symbols (as
 * values or keys), and circular references. The error is a `RedscaleError` with code
 * `ERR_SERIALIZATION` whose `context.path` names where the value is (`$.user.tags[2]`).
 */
export const jsonSerializer: Serializer = {
  serialize: (value) => {
    assertJsonSafe(value, '$', new Set());
    return JSON.stringify(value);
  },
  deserialize: (text) => {
    // A binary payload was written by another serializer: refused (a miss), never guessed at.
    if (typeof (text as unknown) !== 'string') throw new TypeError('a binary payload, and JSON reads text');
    return JSON.parse(text);
  },
};

/** Throws `ERR_SERIALIZATION` naming the path of the first part of `value` JSON cannot round-trip. */
function assertJsonSafe(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value}, which JSON turns into null`);
      return;
    case 'undefined':
      refuse(path, 'undefined, which JSON drops (store null for "nothing")');
      return;
    case 'bigint':
      refuse(path, 'a BigInt, which JSON cannot represent (store it as a string)');
      return;
    case 'function':
      refuse(path, 'a function');
      return;
    case 'symbol':
      refuse(path, 'a symbol');
      return;
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.has(object)) refuse(path, 'a circular reference');
  ancestors.add(object);
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      if (!(i in object)) refuse(`${path}[${i}]`, 'an array hole, which JSON turns into null');
      assertJsonSafe(object[i], `${path}[${i}]`, ancestors);
    }
  } else {
    const proto = Object.getPrototypeOf(object);
    if (proto !== Object.prototype && proto !== null) {
      const name = (object as { constructor?: { name?: string } }).constructor?.name || 'a non-plain object';
      refuse(path, `${describeClass(name)}, which JSON does not give back as it was (convert it to plain data)`);
    }
    if (
      Object.getOwnPropertySymbols(object).some((symbol) => Object.prototype.propertyIsEnumerable.call(object, symbol))
    ) {
      refuse(path, 'an object with symbol keys, which JSON drops');
    }
    for (const key of Object.keys(object)) {
      assertJsonSafe((object as Record<string, unknown>)[key], childPath(path, key), ancestors);
    }
  }
  ancestors.delete(object);
}

function describeClass(name: string): string {
  return /^[A-Z]/.test(name) ? `a ${name}` : name;
}

function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function refuse(path: string, what: string): never {
  throw new RedscaleError('ERR_SERIALIZATION', `${what} at ${path}`, { context: { path } });
}
