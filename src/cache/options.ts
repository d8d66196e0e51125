import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { type CircuitBreakerOption, circuitBreakerSchema } from '../common/circuit-breaker.js';
import type { Duration } from '../common/duration.js';
import type { RedscaleError } from '../common/errors.js';
import {
  durationSchema,
  MAX_TIMER_MS,
  parseOptions,
  positiveInt,
  prefixSchema,
  ratioSchema,
  redisClientSchema,
} from '../common/options.js';
import { type Logger, loggerSchema } from '../observability/logger.js';
import { MAX_KEY_LENGTH } from './bus-protocol.js';
import type { Loader, LoadSpec } from './load.js';
import { MAX_INFLATED_BYTES } from './payload.js';
import { isStandardSchema, type StandardSchemaV1 } from './schema.js';
import { jsonSerializer, type Serializer } from './serializer.js';

/** Options for {@link Cache}. Per-call options override `ttl`, `staleFor` and `tags`. */
export interface CacheOptions {
  /** Where entries live (standalone or Cluster). */
  redis: RedisLike;
  /**
   * Namespace: entries are `<prefix>:c:<key>`. Glob characters in it are escaped wherever the
   * cache matches keys, so `'tenant[1]'` never matches `'tenant1'`. Default `'redscale'`.
   */
  prefix?: string;
  /** How long an entry is fresh. At most 10 years. Default `'5m'`. */
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
   * An in-process LRU in front of Redis, kept coherent across instances by the invalidation bus
   * and used only while the bus is known to deliver. A hit does no I/O. It holds the value as
   * every instance reads it (the serializer's round trip) and returns the same object to every
   * caller: treat cached values as immutable. `ttl` caps how long an entry stays (default: the
   * entry's own ttl + staleFor). Default `false`.
   */
  l1?: false | { maxEntries?: number; ttl?: Duration };
  /**
   * The invalidation bus (Redis pub/sub; sharded on Cluster): tells every instance about writes,
   * deletes and invalidations so L1 and remembered tag versions stay coherent, and wakes callers
   * waiting for another instance's load. One extra connection per Cache. Every `heartbeat` each
   * instance publishes a heartbeat it must hear back before the next one, so a subscription that
   * stays open but delivers nothing is treated as a drop within 2 × `heartbeat` (L1 flushed,
   * versions forgotten). Default `true` (heartbeat `'1s'`).
   */
  bus?: boolean | { heartbeat?: Duration };
  /**
   * How many tag versions each instance remembers (LRU) while the bus delivers, so a hit on a
   * tagged entry needs no extra round trip. A forgotten tag is read from Redis again. Default `10_000`.
   */
  maxRememberedTags?: number;
  /**
   * Cross-instance stampede protection: on a miss one caller loads under a fill lock that lives
   * `ttl` (extended while the loader runs); the others wait up to `wait` to be told the value is
   * there, then load themselves without storing. Both at most 2^31 − 1 ms (a timer's limit).
   * Default `{ ttl: '10s', wait: '5s' }`.
   */
  lock?: { ttl?: Duration; wait?: Duration };
  /**
   * Cache loader errors for this long, so every instance sees the failure instead of retrying it.
   * A background refresh's failure is never cached (the stale value keeps being served). Default `0` (never).
   */
  errorTtl?: Duration;
  /**
   * The Redis time one call may spend, all its Redis steps together (read, fill lock, tag
   * versions, write, publish); the loader's own time is not counted. Default `'250ms'`.
   */
  timeout?: Duration;
  /**
   * One circuit breaker per Redis node (a dead Cluster master costs only its own keys): a node
   * whose calls failed for `failureWindow` (at least `failureThreshold` of them) is skipped for
   * `cooldown`. Default `{ failureThreshold: 3, failureWindow: '1s', cooldown: '1s' }`.
   */
  circuitBreaker?: false | CircuitBreakerOption;
  /**
   * On a stale hit, how long `getOrSet` waits for the background refresh before it returns the
   * stale value (the refresh goes on either way). Per call too. Default `0`: the stale value at once.
   */
  softTimeout?: Duration;
  /**
   * How long `getOrSet` waits for a value it has to load (its own load, or another instance's)
   * before it rejects with a `LoaderTimeoutError` (`ERR_LOADER_TIMEOUT`); the load goes on in the
   * background and stores its value when it ends. Per call too. Default: none (wait for the loader).
   */
  hardTimeout?: Duration;
  /**
   * Deflate (node:zlib) payloads of at least `threshold` bytes (default `1024`) at zlib `level`
   * 1–9 (default `-1`: zlib's own, 6), when that makes them smaller. Entries record whether they
   * are compressed, so caches with and without it read each other's entries. Default `false`.
   */
  compression?: boolean | { threshold?: number; level?: number };
  /**
   * How values are stored: text, or bytes through {@link binarySerializer}. Default
   * {@link jsonSerializer} (strict JSON: refuses what it cannot give back).
   */
  serializer?: Serializer;
  /**
   * Called with every failure the cache absorbed: each Redis failure (also counted in
   * `stats().redisErrors` and emitted as `redis-error`) and each dropped bus message.
   */
  onError?: (error: RedscaleError) => void;
  /**
   * A pino/console-like logger: absorbed Redis failures, dropped bus messages, bus drops and a
   * circuit opening go to `warn`, a circuit closing to `debug`. Default: none (nothing is logged).
   */
  logger?: Logger;
}

/** Options of one read. */
export interface ReadOptions<S extends StandardSchemaV1 = StandardSchemaV1> {
  /** Validates the value read back; an entry that fails is a miss and is deleted. */
  schema?: S;
}

/** Options of one write. */
export interface WriteOptions {
  /** How long this entry is fresh. Default: the cache's `ttl`. */
  ttl?: Duration;
  /** How long after `ttl` it may be served stale. Default: the cache's `staleFor`. */
  staleFor?: Duration;
  /** Tags to invalidate the entry by; `invalidateTags` makes every entry with one of them stale. */
  tags?: string[];
}

/** Options of one getOrSet. */
export interface GetOrSetOptions<S extends StandardSchemaV1 = StandardSchemaV1> extends ReadOptions<S>, WriteOptions {
  /** This call's soft timeout (see {@link CacheOptions.softTimeout}). Default: the cache's. */
  softTimeout?: Duration;
  /** This call's hard timeout (see {@link CacheOptions.hardTimeout}). Default: the cache's. */
  hardTimeout?: Duration;
  /**
   * Load anew whatever the cache holds (fresh or stale), and store the result: for one call, for
   * instance after a write the caller knows of. Concurrent loads of the key still share one
   * loader run (one started before this call is not joined). Default `false`.
   */
  forceFresh?: boolean;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

/** Validates {@link CacheOptions} and resolves their defaults (durations to ms). */
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
  bus: z
    .union([z.boolean(), z.strictObject({ heartbeat: durationSchema({ min: 10, max: MAX_TIMER_MS }).default(1_000) })])
    .default(true)
    .transform((bus) => (bus === false ? false : { heartbeat: bus === true ? 1_000 : bus.heartbeat })),
  maxRememberedTags: positiveInt().default(10_000),
  lock: z
    .strictObject({
      ttl: durationSchema({ min: 10, max: MAX_TIMER_MS }).default(10_000),
      wait: durationSchema({ allowZero: true, max: MAX_TIMER_MS }).default(5_000),
    })
    .prefault({}),
  errorTtl: durationSchema({ allowZero: true }).default(0),
  timeout: durationSchema({ max: MAX_TIMER_MS }).default(250),
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
  softTimeout: durationSchema({ allowZero: true, max: MAX_TIMER_MS }).default(0),
  hardTimeout: durationSchema({ max: MAX_TIMER_MS }).optional(),
  onError: fn<(error: RedscaleError) => void>().optional(),
  compression: z
    .union([
      z.boolean(),
      z.strictObject({
        threshold: z.number().int().min(0).max(MAX_INFLATED_BYTES).default(1_024),
        level: z.number().int().min(-1).max(9).default(-1),
      }),
    ])
    .default(false)
    .transform((value) => (value === false ? false : value === true ? { threshold: 1_024, level: -1 } : value)),
  logger: loggerSchema.optional(),
});

/** Re-exported here for the options' users; defined in `serializer.ts`. */
export { jsonSerializer, type Serializer };

/** {@link CacheOptions} after validation: every default filled in, durations in ms. */
export type ResolvedCacheOptions = z.output<typeof cacheOptionsSchema>;

const tagSchema = z.string().refine((tag) => tag.length > 0 && tag.length <= MAX_KEY_LENGTH, {
  message: `a non-empty tag of at most ${MAX_KEY_LENGTH} characters`,
});

/** Validates the options of one write or getOrSet ({@link GetOrSetOptions}). */
export const writeOptionsSchema = z.strictObject({
  ttl: durationSchema().optional(),
  staleFor: durationSchema({ allowZero: true }).optional(),
  tags: z.array(tagSchema).min(1, { message: 'at least one tag (leave tags out for none)' }).optional(),
  schema: z
    .custom<StandardSchemaV1>(isStandardSchema, { message: 'a Standard Schema (zod, valibot, arktype…)' })
    .optional(),
});

/** Validates the options of one getOrSet ({@link GetOrSetOptions}). */
export const getOrSetOptionsSchema = writeOptionsSchema.extend({
  softTimeout: durationSchema({ allowZero: true, max: MAX_TIMER_MS }).optional(),
  hardTimeout: durationSchema({ max: MAX_TIMER_MS }).optional(),
  forceFresh: z.boolean().optional(),
});

/** Options of {@link Cache.whenReady}. */
export interface WhenReadyOptions {
  /** How long to wait for the bus to deliver before rejecting with ERR_TIMEOUT. Default `'5s'`. */
  timeout?: Duration;
  /** Rejects with ERR_ABORTED when aborted. */
  signal?: AbortSignal;
}

/** Validates {@link WhenReadyOptions}. */
export const whenReadySchema = z.strictObject({
  timeout: durationSchema({ max: MAX_TIMER_MS }).default(5_000),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
});

/**
 * One call's options resolved against the cache's defaults (an empty object is the hot path: no
 * parsing). `loads`: a getOrSet, which also takes the timeouts and `forceFresh`.
 */
export function resolveCall<T>(
  defaults: ResolvedCacheOptions,
  options: GetOrSetOptions,
  where: string,
  loader: Loader<T>,
  loads = false,
): LoadSpec<T> {
  let has = false;
  for (const _ in options) {
    has = true;
    break;
  }
  if (!has)
    return {
      ttlMs: defaults.ttl,
      staleForMs: defaults.staleFor,
      tags: undefined,
      schema: undefined,
      loader,
      softTimeoutMs: defaults.softTimeout,
      hardTimeoutMs: defaults.hardTimeout,
      forceFresh: false,
    };
  const parsed: z.output<typeof getOrSetOptionsSchema> = parseOptions(
    loads ? getOrSetOptionsSchema : writeOptionsSchema,
    options,
    where,
  );
  return {
    ttlMs: parsed.ttl ?? defaults.ttl,
    staleForMs: parsed.staleFor ?? defaults.staleFor,
    tags: parsed.tags ? [...new Set(parsed.tags)] : undefined,
    schema: parsed.schema,
    loader,
    softTimeoutMs: parsed.softTimeout ?? defaults.softTimeout,
    hardTimeoutMs: parsed.hardTimeout ?? defaults.hardTimeout,
    forceFresh: parsed.forceFresh ?? false,
  };
}
