import { LRUCache } from 'lru-cache';
import { multiKeyGroups } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { CircuitBreaker } from '../common/circuit-breaker.js';
import { withTimeout } from '../common/deadline.js';
import { InvalidOptionError, messageOf, RedscaleError, toRedisError } from '../common/errors.js';
import { decodeEnvelope, encodeEnvelope, tagsStillValid } from './envelope.js';
import type { ResolvedCacheOptions } from './options.js';
import { type StandardSchemaV1, validate } from './schema.js';
import type { CacheStats } from './stats.js';
import type { TagVersions } from './tags.js';

/** A decoded entry, as L1 keeps it. */
export interface Entry {
  kind: 'value' | 'error';
  /** The value (or, for a cached loader error, its message). */
  value: unknown;
  freshUntil: number;
  staleUntil: number;
  loadMs: number;
  tags: Record<string, number> | undefined;
}

/** What a read found. */
export type ReadResult = { state: 'fresh' | 'stale'; entry: Entry; layer: 'l1' | 'l2' } | { state: 'miss' };

const MISS: ReadResult = { state: 'miss' };

/** How an entry is written. */
export interface WriteSpec {
  ttlMs: number;
  staleForMs: number;
  /** Tag versions read before the value was loaded. */
  tags: ReadonlyMap<string, number> | undefined;
  loadMs: number;
}

/**
 * Entries in L1 and Redis: encoding, freshness, tag checks, schema checks, and every Redis call
 * under a timeout and the circuit breaker. A Redis failure rejects with a RedscaleError (the
 * cache decides what the caller gets instead); a bad entry is a miss and is deleted.
 */
export class EntryStore {
  readonly #options: ResolvedCacheOptions;
  readonly #redis: RedisLike;
  readonly #tags: TagVersions;
  readonly #stats: CacheStats;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #l1: LRUCache<string, Entry> | undefined;
  readonly #onRedisError: (error: RedscaleError) => void;
  /** Whether L1 may be used: only while the bus delivers invalidations. */
  #l1Live = false;
  /** Bumped by every invalidation: a read that started before one must not fill L1. */
  #epoch = 0;

  constructor(
    options: ResolvedCacheOptions,
    tags: TagVersions,
    stats: CacheStats,
    onRedisError: (error: RedscaleError) => void,
  ) {
    this.#options = options;
    this.#redis = options.redis;
    this.#tags = tags;
    this.#stats = stats;
    this.#onRedisError = onRedisError;
    const breaker = options.circuitBreaker;
    this.#breaker = breaker ? new CircuitBreaker(breaker) : undefined;
    this.#l1 = options.l1 ? new LRUCache<string, Entry>({ max: options.l1.maxEntries }) : undefined;
  }

  /** The Redis key of an entry. */
  keyOf(key: string): string {
    return `${this.#options.prefix}:c:${key}`;
  }

  /** Turns L1 on (bus connected) or off and empty (bus dropped: invalidations may have been missed). */
  setL1Live(live: boolean): void {
    this.#l1Live = live;
    if (!live) this.clearL1();
  }

  /** Forgets every L1 entry. */
  clearL1(): void {
    this.#epoch++;
    this.#l1?.clear();
  }

  /** Drops keys from L1 (another instance wrote or deleted them). */
  dropL1(keys: readonly string[]): void {
    this.#epoch++;
    if (this.#l1) for (const key of keys) this.#l1.delete(key);
  }

  /** Drops L1 keys matching a pattern (another instance invalidated it). */
  dropL1Matching(pattern: RegExp): void {
    this.#epoch++;
    if (this.#l1) for (const key of this.#l1.keys()) if (pattern.test(key)) this.#l1.delete(key);
  }

  /** Notes that tags changed: L1 entries are checked against tag versions on every hit. */
  tagsChanged(): void {
    this.#epoch++;
  }

  /** Reads an entry: L1 first (no I/O), then Redis. */
  async read(key: string, schema: StandardSchemaV1 | undefined): Promise<ReadResult> {
    const now = Date.now();
    const l1 = this.#l1Live ? this.#l1 : undefined;
    if (l1) {
      const entry = l1.get(key);
      if (entry) {
        if (tagsStillValid(entry.tags, this.#tags.known)) {
          if (now < entry.freshUntil) return { state: 'fresh', entry, layer: 'l1' };
          if (now < entry.staleUntil) return { state: 'stale', entry, layer: 'l1' };
        }
        l1.delete(key);
      }
    }
    const epoch = this.#epoch;
    const text = await this.call('cache get', key, () => this.#redis.get(this.keyOf(key)));
    if (text === null) return MISS;
    const envelope = decodeEnvelope(text);
    if (!envelope) return this.#discard(key);
    if (now >= envelope.staleUntil) return MISS;
    if (envelope.tags && !tagsStillValid(envelope.tags, this.#tags.known)) {
      // Unknown here (or the bus is down): read the versions. Known and newer: invalidated.
      const names = Object.keys(envelope.tags);
      if (names.every((tag) => this.#tags.known.has(tag))) return MISS;
      const current = await this.call('cache tags', key, () => this.#tags.current(names, this.#lifetime(), false));
      if (!tagsStillValid(envelope.tags, current)) return MISS;
    }
    let value: unknown = envelope.payload;
    if (envelope.kind === 'value') {
      try {
        value = this.#options.serializer.deserialize(envelope.payload);
      } catch {
        return this.#discard(key);
      }
      if (schema) {
        const checked = await validate(schema, value);
        if (!checked.ok) return this.#discard(key);
        value = checked.value;
      }
    }
    const entry: Entry = {
      kind: envelope.kind,
      value,
      freshUntil: envelope.freshUntil,
      staleUntil: envelope.staleUntil,
      loadMs: envelope.loadMs,
      tags: envelope.tags,
    };
    if (l1 && this.#l1Live && epoch === this.#epoch) this.#remember(key, entry, now);
    return { state: now < entry.freshUntil ? 'fresh' : 'stale', entry, layer: 'l2' };
  }

  /**
   * Writes a value (or, with `kind: 'error'`, a loader error's message).
   * @throws InvalidOptionError for `undefined`; RedscaleError ERR_SERIALIZATION for a value the
   * serializer refuses; a RedscaleError when Redis fails.
   */
  async write(key: string, value: unknown, spec: WriteSpec, kind: 'value' | 'error' = 'value'): Promise<void> {
    let payload: string;
    if (kind === 'error') {
      payload = String(value);
    } else {
      if (value === undefined) {
        throw new InvalidOptionError(
          'value',
          value,
          'a value other than undefined (store null for "nothing")',
          'Cache',
        );
      }
      try {
        payload = this.#options.serializer.serialize(value);
      } catch (error) {
        throw new RedscaleError(
          'ERR_SERIALIZATION',
          `redscale: the value for "${key}" cannot be serialized: ${messageOf(error)}`,
          {
            cause: error,
            context: { key },
          },
        );
      }
    }
    const now = Date.now();
    const jitter = this.#options.ttlJitter;
    const ttlMs = jitter ? Math.max(1, Math.round(spec.ttlMs * (1 + (Math.random() * 2 - 1) * jitter))) : spec.ttlMs;
    const entry: Entry = {
      kind,
      value,
      freshUntil: now + ttlMs,
      staleUntil: now + ttlMs + spec.staleForMs,
      loadMs: Math.round(spec.loadMs),
      tags: spec.tags ? Object.fromEntries(spec.tags) : undefined,
    };
    const text = encodeEnvelope({ ...entry, payload });
    const epoch = this.#epoch;
    await this.call('cache set', key, () => this.#redis.set(this.keyOf(key), text, 'PX', ttlMs + spec.staleForMs));
    if (this.#l1 && this.#l1Live && kind === 'value' && epoch === this.#epoch) this.#remember(key, entry, now);
    else this.#l1?.delete(key);
  }

  /** Deletes entries from Redis (one UNLINK, per hash slot on Cluster) and L1; resolves how many Redis had. */
  async delete(keys: readonly string[]): Promise<number> {
    this.dropL1(keys);
    const groups = multiKeyGroups(
      this.#redis,
      keys.map((key) => this.keyOf(key)),
    );
    const counts = await Promise.all(
      groups.map((group) => this.call('cache delete', group[0] ?? '', () => this.#redis.unlink(...group))),
    );
    return counts.reduce((sum, count) => sum + count, 0);
  }

  /**
   * Runs one Redis call under the cache's timeout and circuit breaker. While the circuit is open
   * it rejects at once, without sending anything.
   */
  async call<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    if (this.#breaker && !this.#breaker.tryPass()) {
      throw new RedscaleError(
        'ERR_REDIS',
        `redscale: Redis is skipped for ${this.#breaker.retryInMs} ms after failing (circuit open)`,
        {
          context: { operation, key },
        },
      );
    }
    try {
      const result = await withTimeout(run(), this.#options.timeout, operation, { key });
      this.#breaker?.success();
      return result;
    } catch (error) {
      const wrapped = toRedisError(operation, error, { key });
      this.#breaker?.failure();
      this.#stats.redisErrors++;
      this.#onRedisError(wrapped);
      throw wrapped;
    }
  }

  /** How long tag keys must outlive a default entry. */
  #lifetime(): number {
    return this.#options.ttl + this.#options.staleFor;
  }

  #remember(key: string, entry: Entry, now: number): void {
    const limit = this.#options.l1 ? this.#options.l1.ttl : undefined;
    const ttl = Math.min(entry.staleUntil - now, limit ?? Number.POSITIVE_INFINITY);
    if (ttl > 0) this.#l1?.set(key, entry, { ttl });
  }

  /** An entry that cannot be decoded or fails its schema: a miss, and gone from Redis. */
  #discard(key: string): ReadResult {
    this.#l1?.delete(key);
    this.call('cache discard', key, () => this.#redis.unlink(this.keyOf(key))).catch(() => {});
    return MISS;
  }
}
