import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { type CircuitBreakerOption, circuitBreakerSchema } from '../common/circuit-breaker.js';
import type { Duration } from '../common/duration.js';
import type { RedscaleError } from '../common/errors.js';
import { durationSchema, positiveInt, prefixSchema, ratioSchema, redisClientSchema } from '../common/options.js';
import { isStandardSchema, type StandardSchemaV1 } from './schema.js';

/** Turns values into strings for Redis and back. */
export interface Serializer {
  serialize(value: unknown): string;
  deserialize(text: string): unknown;
}

/** JSON: the default serializer. `undefined` and values JSON cannot represent are refused. */
export const jsonSerializer: Serializer = {
  serialize: (value) => {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`${typeof value} cannot be represented in JSON`);
    return text;
  },
  deserialize: (text) => JSON.parse(text),
};

/** Options for {@link Cache}. Per-call options override `ttl`, `staleFor` and `tags`. */
export interface CacheOptions {
  /** Where entries live (standalone or Cluster). */
  redis: RedisLike;
  /** Namespace: entries are `<prefix>:c:<key>`. Default `'redscale'`. */
  prefix?: string;
  /** How long an entry is fresh. Default `'5m'`. */
  ttl?: Duration;
  /**
   * How long after `ttl` an entry may still be served on purpose: `getOrSet` returns it at once
   * while one background refresh runs (stale-while-revalidate), and keeps returning it if that
   * refresh fails (stale-if-error). Default `0`.
   */
  staleFor?: Duration;
  /** Spread expiries by ± this share of the ttl, so keys written together do not expire together. Default `0`. */
  ttlJitter?: number;
  /**
   * Probabilistic early refresh (XFetch): a hit refreshes in the background before expiry with a
   * probability that rises as expiry nears and with how long the load took. `beta` > 1 refreshes
   * earlier. Default `false`.
   */
  earlyRefresh?: false | { beta?: number };
  /**
   * An in-process LRU in front of Redis, kept coherent across instances by the invalidation bus.
   * A hit does no I/O. It returns the same object to every caller: treat cached values as
   * immutable. Default `false`.
   */
  l1?: false | { maxEntries?: number; ttl?: Duration };
  /**
   * The invalidation bus (Redis pub/sub; sharded on Cluster): tells every instance about writes,
   * deletes and invalidations so L1 and remembered tag versions stay coherent, and wakes callers
   * waiting for another instance's load. One extra connection per Cache. Default `true`.
   */
  bus?: boolean;
  /**
   * Cross-instance stampede protection: on a miss one caller loads under a lock for up to `ttl`
   * (extended while the loader runs); the others wait up to `wait` to be told the value is there,
   * then load themselves. Default `{ ttl: '10s', wait: '5s' }`.
   */
  lock?: { ttl?: Duration; wait?: Duration };
  /** Cache loader errors for this long, so every instance sees the failure instead of retrying it. Default `0` (never). */
  errorTtl?: Duration;
  /** Longest one Redis call may take before the cache goes without it. Default `'250ms'`. */
  timeout?: Duration;
  /** Skip Redis for `cooldown` after `failureThreshold` consecutive failures. Default `{ failureThreshold: 1, cooldown: '1s' }`. */
  circuitBreaker?: false | CircuitBreakerOption;
  /** How values are stored. Default JSON. */
  serializer?: Serializer;
  /** Called with every Redis failure the cache absorbed. */
  onError?: (error: RedscaleError) => void;
}

/** Options of one read. */
export interface ReadOptions<S extends StandardSchemaV1 = StandardSchemaV1> {
  /** Validates the value read back; an entry that fails is a miss and is deleted. */
  schema?: S;
}

/** Options of one write. */
export interface WriteOptions {
  ttl?: Duration;
  staleFor?: Duration;
  /** Tags to invalidate the entry by; `invalidateTags` makes every entry with one of them stale. */
  tags?: string[];
}

/** Options of one getOrSet. */
export interface GetOrSetOptions<S extends StandardSchemaV1 = StandardSchemaV1> extends ReadOptions<S>, WriteOptions {}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

export const cacheOptionsSchema = z.strictObject({
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale'),
  ttl: durationSchema().default(300_000),
  staleFor: durationSchema({ allowZero: true }).default(0),
  ttlJitter: ratioSchema.default(0),
  earlyRefresh: z.union([z.literal(false), z.strictObject({ beta: z.number().positive().default(1) })]).default(false),
  l1: z
    .union([
      z.literal(false),
      z.strictObject({ maxEntries: positiveInt().default(10_000), ttl: durationSchema().optional() }),
    ])
    .default(false),
  bus: z.boolean().default(true),
  lock: z
    .strictObject({
      ttl: durationSchema({ min: 10 }).default(10_000),
      wait: durationSchema({ allowZero: true }).default(5_000),
    })
    .prefault({}),
  errorTtl: durationSchema({ allowZero: true }).default(0),
  timeout: durationSchema().default(250),
  circuitBreaker: circuitBreakerSchema,
  serializer: z
    .custom<Serializer>(
      (value) =>
        typeof value === 'object' &&
        value !== null &&
        typeof (value as Serializer).serialize === 'function' &&
        typeof (value as Serializer).deserialize === 'function',
      { message: 'an object with serialize(value) and deserialize(text)' },
    )
    .default(jsonSerializer),
  onError: fn<(error: RedscaleError) => void>().optional(),
});

export type ResolvedCacheOptions = z.output<typeof cacheOptionsSchema>;

const tagSchema = z.string().min(1, { message: 'a non-empty tag' });

export const writeOptionsSchema = z.strictObject({
  ttl: durationSchema().optional(),
  staleFor: durationSchema({ allowZero: true }).optional(),
  tags: z.array(tagSchema).min(1, { message: 'at least one tag (leave tags out for none)' }).optional(),
  schema: z
    .custom<StandardSchemaV1>(isStandardSchema, { message: 'a Standard Schema (zod, valibot, arktype…)' })
    .optional(),
});
