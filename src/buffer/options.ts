import { z } from 'zod';
import { jsonSerializer, type Serializer } from '../cache/options.js';
import { isStandardSchema, type StandardSchemaV1 } from '../cache/schema.js';
import type { RedisLike } from '../client/types.js';
import { type CircuitBreakerOption, circuitBreakerSchema } from '../common/circuit-breaker.js';
import type { Duration } from '../common/duration.js';
import type { RedscaleError } from '../common/errors.js';
import { durationSchema, MAX_TIMER_MS, positiveInt, prefixSchema, redisClientSchema } from '../common/options.js';
import { replicasSchema } from '../lock/options.js';
import { MAX_ID_LENGTH } from './entries.js';

/** Options for {@link WriteBuffer}. Producers and consumers of one buffer must agree on `prefix`, `name` and `shards`. */
export interface WriteBufferOptions<T = unknown> {
  /** Where the buffer lives (standalone or Cluster). Its keys must not be evictable. */
  redis: RedisLike;
  /** The buffer's name, e.g. `'chat-messages'`: its keys are `<prefix>:buffer:{<name>/<shard>}`. */
  name: string;
  /** Namespace of the keys. Default `'redscale'`. */
  prefix?: string;
  /**
   * How many streams the buffer is spread over. On a Cluster, set it to the number of masters (or
   * a multiple): each shard's key is placed in its own share of the slot space, so throughput
   * grows with masters. Change it only once the buffer is empty. Default `1`.
   */
  shards?: number;
  /**
   * Most items the buffer holds (read or not, until acknowledged), shared evenly by the shards.
   * Beyond it `enqueue` rejects with a {@link WriteBufferFullError}; nothing is ever trimmed to
   * make room. Default `100_000`.
   */
  maxBacklog?: number;
  /** Most dead letters kept, shared evenly by the shards. When full, failing items stay in the buffer. Default `100_000`. */
  maxDeadLetters?: number;
  /** Longest one Redis call may take. Default `'1s'`. */
  timeout?: Duration;
  /** `enqueue` skips a shard whose Redis node keeps failing (and fails fast when all do). Default `{ failureThreshold: 3, failureWindow: '1s', cooldown: '1s' }`. */
  circuitBreaker?: false | CircuitBreakerOption;
  /**
   * Replicas that must acknowledge an item (Redis `WAIT`) before `enqueue`/`enqueueMany` resolve.
   * `0` resolves once the primary has it: a failover before it reached a replica loses it. `1`
   * (behind Sentinel: a primary and one replica or more) means an item whose enqueue resolved
   * survives a failover to an acknowledging replica. When fewer acknowledge within
   * `replicationTimeout`, the call rejects with a {@link WriteBufferNotReplicatedError}. Costs one
   * more round trip per call. Default `0`.
   */
  replicas?: number;
  /** How long Redis waits for `replicas` to acknowledge an enqueue (1 ms or more). Default `'500ms'`. */
  replicationTimeout?: Duration;
  /** How items are stored. Default JSON. */
  serializer?: Serializer;
  /** Validates items read back; an item that fails goes to the dead letters without reaching `flush`. */
  schema?: StandardSchemaV1<unknown, T>;
  /** Called with every failure the buffer absorbed (a consumer's Redis errors, a full dead-letter stream). */
  onError?: (error: RedscaleError) => void;
}

/** Options of {@link WriteBuffer.consume}. */
export interface ConsumerOptions {
  /** Most items per `flush` call. Default `100` (at most 1,000). */
  batchSize?: number;
  /**
   * How often each shard is polled while it is empty or has fewer than `batchSize` items: the
   * longest an item waits before a flush, on top of the flush in progress. Default `'100ms'`.
   */
  flushInterval?: Duration;
  /** Deliveries of an item (its failed flushes, and consumers that died holding it) before it is dead-lettered. Default `5`. */
  maxAttempts?: number;
  /** Backoff before an item whose flush failed is retried: exponential from `min` to `max`, jittered. Default `{ min: '1s', max: '1m' }`. */
  retryDelay?: { min?: Duration; max?: Duration };
  /**
   * How long a consumer may go unheard before the others take over the items it holds (it died,
   * or is stalled). A live consumer renews its hold every third of this, however long a flush
   * takes. Default `'30s'`.
   */
  claimIdle?: Duration;
  /** How long `stop()` waits for the flushes in progress before aborting their signal and returning. Default `'10s'`. */
  stopTimeout?: Duration;
  /**
   * This consumer's name in the group; it must be unique among live consumers (two consumers
   * under one name would hold each other's items). Default `<hostname>:<pid>:<random>`.
   */
  consumerName?: string;
  /** Consumers with nothing pending that have been gone this long are removed from the group. Default `'1h'`. */
  pruneIdle?: Duration;
}

/** One buffered item, as `flush` receives it. */
export interface BufferedItem<T> {
  /**
   * The item's id: the one given to `enqueue`, or the one it generated. The same on every
   * delivery of the item (retries, a dead consumer's items taken over, a replayed dead letter):
   * delivery is at least once, so make the write idempotent on it (a unique key, an upsert).
   */
  id: string;
  /** The item, deserialized (and validated by `schema`, if one was given). */
  item: T;
  /** 1 on the first delivery; higher when it is a retry or was taken over from a consumer that stopped. */
  attempt: number;
  /** When it entered the buffer (server time; a replayed dead letter re-enters). */
  enqueuedAt: Date;
  /** The shard it came from. */
  shard: number;
}

/** What `flush` is told besides the items. */
export interface FlushContext {
  /** Aborts when the consumer stops and `stopTimeout` ran out: stop writing. */
  signal: AbortSignal;
  /** The shard the batch came from. */
  shard: number;
}

/**
 * What `flush` may return to report partial success: the items listed in `failed` (by id) are
 * retried, every other item of the batch is acknowledged as committed. Returning nothing means
 * all were committed; throwing means none was.
 */
export interface FlushResult {
  /** The items (by id) that were not committed, with the error to record for each. */
  failed?: ReadonlyArray<{ id: string; error?: unknown }>;
}

/** Writes a batch to the real sink: resolves once the items are durably committed there. */
export type FlushHandler<T> = (
  items: BufferedItem<T>[],
  context: FlushContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing (`async () => {}`) is the common case.
) => Promise<FlushResult | void> | FlushResult | void;

/** Options of one `enqueue`. */
export interface EnqueueOptions {
  /**
   * The item's id (1–512 characters). Give your own when you may retry: an `enqueue` that timed
   * out may still have buffered the item, and retrying under the same id lets `flush` drop the
   * duplicate. Default: a random UUID.
   */
  id?: string;
}

/** Options of one `enqueueMany`. */
export interface EnqueueManyOptions {
  /** One id per item (see {@link EnqueueOptions.id}). Default: random UUIDs. */
  ids?: readonly string[];
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

export const writeBufferSchema = z.strictObject({
  redis: redisClientSchema,
  name: z.string().min(1).max(200),
  prefix: prefixSchema.default('redscale'),
  shards: positiveInt()
    .refine((n) => n <= 256, { message: 'an integer from 1 to 256' })
    .default(1),
  maxBacklog: positiveInt().default(100_000),
  maxDeadLetters: positiveInt().default(100_000),
  timeout: durationSchema().default(1_000),
  circuitBreaker: circuitBreakerSchema,
  replicas: replicasSchema,
  replicationTimeout: durationSchema({ max: MAX_TIMER_MS }).default(500),
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
  schema: z
    .custom<StandardSchemaV1>(isStandardSchema, { message: 'a Standard Schema (zod, valibot, arktype…)' })
    .optional(),
  onError: fn<(error: RedscaleError) => void>().optional(),
});

export type ResolvedWriteBufferOptions = z.output<typeof writeBufferSchema>;

export const consumerSchema = z.strictObject({
  batchSize: positiveInt()
    .refine((n) => n <= 1_000, { message: 'an integer from 1 to 1000' })
    .default(100),
  flushInterval: durationSchema().default(100),
  maxAttempts: positiveInt().default(5),
  retryDelay: z
    .strictObject({ min: durationSchema({ allowZero: true }).default(1_000), max: durationSchema().default(60_000) })
    .refine((delay) => delay.min <= delay.max, { message: 'min not greater than max' })
    .prefault({}),
  claimIdle: durationSchema({ min: 100 }).default(30_000),
  stopTimeout: durationSchema({ allowZero: true }).default(10_000),
  consumerName: z.string().min(1).max(200).optional(),
  pruneIdle: durationSchema({ min: 1_000 }).default(3_600_000),
});

export type ResolvedConsumerOptions = z.output<typeof consumerSchema>;

/** An item id given by the caller. */
export const itemIdSchema = z.string().min(1).max(MAX_ID_LENGTH);
