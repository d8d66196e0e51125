import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { StandardSchemaV1 } from '../cache/schema.js';
import { type CircuitBreaker, NodeBreakers } from '../common/circuit-breaker.js';
import { withTimeout } from '../common/deadline.js';
import { InvalidOptionError, messageOf, RedscaleError, toRedisError } from '../common/errors.js';
import { parseOptions, positiveInt } from '../common/options.js';
import { acknowledgedReplicas, connectionOf } from '../lock/replication.js';
import { ScriptCaller } from './calls.js';
import { BufferConsumer } from './consumer.js';
import {
  type DeadLetter,
  DeadLetters,
  type DeadLettersOptions,
  type ReplayOptions,
  type ReplayResult,
} from './dead-letters.js';
import { WriteBufferFullError, WriteBufferNotReplicatedError } from './errors.js';
import { GROUP, type ShardKeys, shardKeys } from './keys.js';
import {
  type ConsumerOptions,
  consumerSchema,
  type EnqueueManyOptions,
  type EnqueueOptions,
  type FlushHandler,
  itemIdSchema,
  type ResolvedWriteBufferOptions,
  type WriteBufferOptions,
  writeBufferSchema,
} from './options.js';

/** How full a buffer is, per shard and in total. */
export interface BufferBacklog {
  /** Items not yet committed (read or not), all shards. */
  size: number;
  /** Of those, the ones handed to a consumer and not yet acknowledged. */
  pending: number;
  /** Dead letters, all shards. */
  deadLetters: number;
  /** The same, per shard, with the shard's bound. */
  shards: Array<{ shard: number; size: number; pending: number; deadLetters: number; maxBacklog: number }>;
}

/** The most items one `enqueueMany` call takes. */
export const MAX_ENQUEUE_BATCH = 1_000;

const limitSchema = (max: number, fallback: number) =>
  z.strictObject({
    limit: positiveInt()
      .refine((n) => n <= max, { message: `an integer from 1 to ${max}` })
      .default(fallback),
  });
const replaySchema = limitSchema(100_000, 1_000).extend({ ids: z.array(z.string()).optional() });
const deadLettersSchema = limitSchema(10_000, 100);
const enqueueSchema = z.strictObject({ id: itemIdSchema.optional() });
const enqueueManySchema = z.strictObject({ ids: z.array(itemIdSchema).optional() });

/**
 * A write buffer on Redis Streams that loses nothing: producers `enqueue` items in one round
 * trip and get on with their request; consumers (any number, in any process) receive them in
 * batches and write them to the real sink with `flush`. An item leaves the buffer only when a
 * `flush` committed it, or, after `maxAttempts` failed deliveries, to the dead letters with its
 * last error, where it can be inspected and replayed. A consumer that dies holding items loses
 * none: the others take them over after `claimIdle`.
 *
 * Delivery is **at least once**: an item is delivered again when a consumer dies or stalls after
 * writing it but before acknowledging it, and an `enqueue` that timed out may have buffered the
 * item. Every delivery carries the item's stable `id`: make the write idempotent on it.
 *
 * Behind Sentinel, Redis replicates asynchronously: an item the primary took but no replica had
 * yet is lost when the primary fails over. Set `replicas: 1` to have `enqueue` resolve only once
 * a replica has the item too.
 *
 * @example
 * ```ts
 * const buffer = new WriteBuffer<Message>({ redis, name: 'chat-messages' })
 * const id = await buffer.enqueue({ chatId, text })            // one round trip
 * buffer.consume(async (items) => {
 *   await db.insertMessages(items.map(({ id, item }) => ({ id, ...item })))  // ON CONFLICT (id) DO NOTHING
 * })
 * ```
 */
export class WriteBuffer<T = unknown> {
  /** The buffer's name. */
  readonly name: string;
  readonly #options: ResolvedWriteBufferOptions;
  readonly #shards: ShardKeys[];
  readonly #caller: ScriptCaller;
  readonly #breakers: NodeBreakers | undefined;
  readonly #deadLetters: DeadLetters<T>;
  readonly #consumers = new Set<BufferConsumer>();
  readonly #maxPerShard: number;
  readonly #maxDeadPerShard: number;
  #next: number;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: WriteBufferOptions<T>) {
    this.#options = parseOptions(writeBufferSchema, options, 'WriteBuffer');
    const { redis, prefix, name, shards, timeout, circuitBreaker } = this.#options;
    this.name = name;
    this.#shards = shardKeys(redis, prefix, name, shards);
    this.#caller = new ScriptCaller(redis, timeout);
    this.#breakers = circuitBreaker ? new NodeBreakers(redis, circuitBreaker) : undefined;
    this.#maxPerShard = Math.ceil(this.#options.maxBacklog / shards);
    this.#maxDeadPerShard = Math.ceil(this.#options.maxDeadLetters / shards);
    this.#deadLetters = new DeadLetters(
      redis,
      name,
      this.#shards,
      this.#caller,
      this.#options.serializer,
      this.#schema,
    );
    this.#next = Math.floor(Math.random() * shards);
  }

  /** The Redis keys of each shard (stream and dead-letter stream), for operators. */
  get keys(): readonly ShardKeys[] {
    return this.#shards;
  }

  /**
   * Adds an item in one round trip and resolves with its id once Redis has it (durably as far as
   * Redis' persistence goes; with `replicas`, once that many replicas have it too, one more round
   * trip). Rejects with a {@link WriteBufferFullError} when the backlog is at `maxBacklog`; with
   * `ERR_TIMEOUT`/`ERR_REDIS` when Redis fails, or a {@link WriteBufferNotReplicatedError}
   * (`ERR_NOT_REPLICATED`) when too few replicas acknowledged in time. After those, the item may
   * still have been buffered (`context.ids` holds the id): retry with `{ id }` and let `flush`
   * drop duplicates (at least once).
   */
  async enqueue(item: T, options: EnqueueOptions = {}): Promise<string> {
    const { id } = parseOptions(enqueueSchema, options, 'WriteBuffer.enqueue()');
    const [added] = await this.#enqueue([item], id === undefined ? undefined : [id]);
    return added as string;
  }

  /**
   * Adds up to 1,000 items in one round trip, all or none (one shard takes them all). Resolves
   * with their ids, in order. Rejects as {@link WriteBuffer.enqueue} does (with `replicas`, one
   * `WAIT` covers the whole batch).
   */
  async enqueueMany(items: readonly T[], options: EnqueueManyOptions = {}): Promise<string[]> {
    const where = 'WriteBuffer.enqueueMany()';
    if (!Array.isArray(items) || items.length === 0 || items.length > MAX_ENQUEUE_BATCH) {
      throw new InvalidOptionError('items', items, `an array of 1 to ${MAX_ENQUEUE_BATCH} items`, where);
    }
    const { ids } = parseOptions(enqueueManySchema, options, where);
    if (ids && ids.length !== items.length) {
      throw new InvalidOptionError('ids', ids, `one id per item (${items.length})`, where);
    }
    return this.#enqueue(items, ids);
  }

  /**
   * Starts a consumer that delivers batches to `flush` until it is stopped. `flush` must resolve
   * only once the items are committed to the sink; it may report some as failed
   * (`{ failed: [{ id, error }] }`), and those alone are retried.
   */
  consume(flush: FlushHandler<T>, options: ConsumerOptions = {}): BufferConsumer {
    if (typeof flush !== 'function') {
      throw new InvalidOptionError('flush', flush, 'a function that writes a batch', 'WriteBuffer.consume()');
    }
    const resolved = parseOptions(consumerSchema, options, 'WriteBuffer.consume()');
    const consumer = new BufferConsumer(
      {
        buffer: this.name,
        shards: this.#shards,
        caller: this.#caller,
        serializer: this.#options.serializer,
        schema: this.#schema as StandardSchemaV1<unknown, unknown> | undefined,
        maxDeadLetters: this.#maxDeadPerShard,
        report: (error) => this.#report(error),
      },
      flush as FlushHandler<unknown>,
      resolved,
    );
    for (const stopped of this.#consumers) if (!stopped.running) this.#consumers.delete(stopped);
    this.#consumers.add(consumer);
    return consumer;
  }

  /** How many items wait, are being flushed, and are dead, per shard. */
  async backlog(): Promise<BufferBacklog> {
    const shards = await Promise.all(
      this.#shards.map(async (shard) => {
        const context = { buffer: this.name, shard: shard.index };
        const [size, pending, deadLetters] = await Promise.all([
          withTimeout(this.#options.redis.xlen(shard.stream), this.#caller.timeoutMs, 'XLEN', context),
          withTimeout(this.#options.redis.xpending(shard.stream, GROUP), this.#caller.timeoutMs, 'XPENDING', context)
            .then((summary) => (Array.isArray(summary) ? Number(summary[0]) || 0 : 0))
            .catch((error: unknown) => {
              if (/NOGROUP/.test(messageOf((error as { cause?: unknown }).cause ?? error))) return 0;
              throw error;
            }),
          withTimeout(this.#options.redis.xlen(shard.deadLetters), this.#caller.timeoutMs, 'XLEN', context),
        ]);
        return { shard: shard.index, size, pending, deadLetters, maxBacklog: this.#maxPerShard };
      }),
    );
    return {
      size: shards.reduce((sum, shard) => sum + shard.size, 0),
      pending: shards.reduce((sum, shard) => sum + shard.pending, 0),
      deadLetters: shards.reduce((sum, shard) => sum + shard.deadLetters, 0),
      shards,
    };
  }

  /** The oldest dead letters (items whose flush kept failing, and malformed entries), oldest first. */
  deadLetters(options: DeadLettersOptions = {}): Promise<DeadLetter<T>[]> {
    const { limit } = parseOptions(deadLettersSchema, options, 'WriteBuffer.deadLetters()');
    return this.#deadLetters.list(limit);
  }

  /**
   * Moves dead letters back into the buffer (same item id, attempts counted afresh): the ones named
   * by `ids`, or the oldest `limit`. Stops early, without error, when the backlog is full.
   */
  replayDeadLetters(options: ReplayOptions = {}): Promise<ReplayResult> {
    const { ids, limit } = parseOptions(replaySchema, options, 'WriteBuffer.replayDeadLetters()');
    return this.#deadLetters.replay(ids, limit, this.#maxPerShard);
  }

  /** Deletes dead letters for good, by `deadLetterId`. Resolves with how many existed. */
  deleteDeadLetters(ids: readonly string[]): Promise<number> {
    return this.#deadLetters.delete(ids);
  }

  /** Stops every consumer this buffer started (each drains; see {@link BufferConsumer.stop}). Never rejects. */
  async close(): Promise<void> {
    await Promise.all([...this.#consumers].map((consumer) => consumer.stop()));
  }

  get #schema(): StandardSchemaV1<unknown, T> | undefined {
    return this.#options.schema as StandardSchemaV1<unknown, T> | undefined;
  }

  async #enqueue(items: readonly T[], givenIds: string[] | undefined): Promise<string[]> {
    const payloads = items.map((item) => {
      try {
        const text = this.#options.serializer.serialize(item);
        if (typeof text !== 'string') throw new TypeError('the serializer did not return a string');
        return text;
      } catch (error) {
        throw new RedscaleError('ERR_SERIALIZATION', `redscale: an item could not be serialized: ${messageOf(error)}`, {
          cause: error,
          context: { buffer: this.name },
        });
      }
    });
    const ids = givenIds ?? items.map(() => randomUUID());
    const shard = this.#pickShard();
    const breaker = this.#breakers?.of(shard.stream);
    const context = { buffer: this.name, shard: shard.index, ids };
    // The socket the items should travel on: `WAIT` counts only that socket's writes (see below).
    const socket = this.#options.replicas > 0 ? this.#socketOf(shard) : undefined;
    let reply: Awaited<ReturnType<ScriptCaller['stamped']>>;
    try {
      reply = await this.#caller.stamped(
        'bufferEnqueue',
        [shard.stream],
        (deadline) => [GROUP, this.#maxPerShard, deadline, ...ids.flatMap((id, i) => [id, payloads[i] as string])],
        this.#caller.deadline(),
        'write buffer enqueue',
        context,
      );
    } catch (error) {
      breaker?.failure();
      throw toRedisError('write buffer enqueue', error, context);
    }
    if (reply.status === -1) {
      breaker?.success();
      throw new WriteBufferFullError(this.name, 'backlog', shard.index, this.#maxPerShard, ids);
    }
    await this.#confirmReplicated(shard, socket, ids, context, breaker);
    breaker?.success();
    return ids;
  }

  /**
   * With `replicas`, waits (Redis `WAIT`, on the connection the items were written on) until
   * enough replicas have them, and rejects when they do not: a failover could lose them.
   */
  async #confirmReplicated(
    shard: ShardKeys,
    socket: unknown,
    ids: string[],
    context: Record<string, unknown>,
    breaker: CircuitBreaker | undefined,
  ): Promise<void> {
    const { redis, replicas, replicationTimeout, timeout } = this.#options;
    if (replicas === 0) return;
    let acknowledged: number;
    try {
      acknowledged = await acknowledgedReplicas(
        redis,
        [shard.stream],
        { replicas, timeoutMs: replicationTimeout },
        performance.now() + replicationTimeout + timeout,
        context,
      );
    } catch (error) {
      breaker?.failure();
      throw toRedisError('write buffer replication wait', error, context);
    }
    // ioredis resends a command across a reconnection (after a failover, to the new primary), where
    // `WAIT` would count another socket's writes: when the socket changed, nothing is proven.
    if (socket === undefined || this.#socketOf(shard) !== socket) acknowledged = 0;
    if (acknowledged < replicas) {
      breaker?.success(); // the node answered: too few replicas is not a failing node
      throw new WriteBufferNotReplicatedError(this.name, shard.index, ids, replicas, acknowledged, replicationTimeout);
    }
  }

  /** The socket a shard's commands travel on now (on a Cluster, its master's), if there is one. */
  #socketOf(shard: ShardKeys): unknown {
    try {
      return connectionOf(this.#options.redis, shard.stream).stream ?? undefined;
    } catch {
      return undefined; // no connection to the shard's master (yet): nothing can be proven
    }
  }

  /** The next shard in turn whose node's circuit is closed (or may be probed). */
  #pickShard(): ShardKeys {
    const count = this.#shards.length;
    for (let tried = 0; tried < count; tried++) {
      const shard = this.#shards[this.#next++ % count] as ShardKeys;
      if (!this.#breakers || this.#breakers.of(shard.stream).tryPass()) return shard;
    }
    throw new RedscaleError(
      'ERR_REDIS',
      `redscale: write buffer "${this.name}": Redis is skipped after failing (circuit open)`,
      {
        context: { buffer: this.name },
      },
    );
  }

  #report(error: RedscaleError): void {
    try {
      this.#options.onError?.(error);
    } catch {
      // A throwing error handler must not stop a consumer.
    }
  }
}
