import { EventEmitter } from 'node:events';
import { InvalidOptionError, type RedscaleError, toRedisError } from '../common/errors.js';
import { parseOptions } from '../common/options.js';
import { Lock } from '../lock/lock.js';
import { type BusMessage, InvalidationBus } from './bus.js';
import { CachedLoaderError, Filler, isCallerError, type Loader, type LoadSpec } from './filler.js';
import {
  type CacheOptions,
  cacheOptionsSchema,
  type GetOrSetOptions,
  type ReadOptions,
  type ResolvedCacheOptions,
  type WriteOptions,
  writeOptionsSchema,
} from './options.js';
import { globToRegExp, unlinkMatching } from './patterns.js';
import type { InferOutput, StandardSchemaV1 } from './schema.js';
import { type CacheEvents, type CacheStats, emptyStats } from './stats.js';
import { EntryStore, type ReadResult } from './store.js';
import { TagVersions } from './tags.js';

type ValueOf<S, T> = S extends StandardSchemaV1 ? InferOutput<S> : T;

const noLoader = () => undefined;

const MISS: ReadResult = { state: 'miss' };
const PATTERN_BATCH = 500;

/**
 * Cache-aside on Redis with stampede protection across instances, stale-while-revalidate,
 * O(1) tag invalidation, pattern invalidation by SCAN, and an optional in-process L1 kept
 * coherent by an invalidation bus. Reads and `getOrSet` never fail because of Redis: a slow or
 * down Redis is a miss, and `getOrSet` returns the loader's value. Writes resolve `false` when
 * Redis did not take them; deletes and invalidations reject, since the caller must know.
 *
 * @example
 * ```ts
 * const cache = new Cache({ redis, prefix: 'app', ttl: '5m', staleFor: '1m', l1: { maxEntries: 10_000 } })
 * const user = await cache.getOrSet(`user:${id}`, () => db.user(id), { tags: [`user:${id}`], schema: User })
 * await cache.invalidateTags([`user:${id}`])
 * ```
 */
export class Cache extends EventEmitter<CacheEvents> {
  readonly #options: ResolvedCacheOptions;
  readonly #tags: TagVersions;
  readonly #store: EntryStore;
  readonly #bus: InvalidationBus | undefined;
  readonly #filler: Filler;
  readonly #stats = emptyStats();
  #busWasUp = false;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: CacheOptions) {
    super();
    this.#options = parseOptions(cacheOptionsSchema, options, 'Cache');
    const { redis, prefix, lock, timeout } = this.#options;
    this.#tags = new TagVersions(redis, prefix);
    this.#store = new EntryStore(this.#options, this.#tags, this.#stats, (error) => this.#report(error));
    // Lock keys live beside, not inside, the entries' namespace, so no pattern can delete them.
    const locks = new Lock({ redis, prefix: `${prefix}:cl`, ttl: lock.ttl, wait: 0, timeout });
    if (this.#options.bus) {
      this.#bus = new InvalidationBus(redis, `${prefix}:bus`, {
        message: (message) => this.#onMessage(message),
        connected: () => {
          this.#busWasUp = true;
          this.#tags.remember(true);
          this.#store.setL1Live(true);
        },
        disconnected: () => {
          this.#tags.remember(false);
          this.#store.setL1Live(false);
          this.#filler.wakeAll();
          if (this.#busWasUp) {
            this.#stats.busDrops++;
            this.emit('bus-drop');
          }
        },
        error: (error) => this.#report(error),
      });
    }
    this.#filler = new Filler({
      options: this.#options,
      store: this.#store,
      tags: this.#tags,
      locks,
      bus: this.#bus,
      stats: this.#stats,
      report: (error) => this.#report(error),
      events: {
        load: (key, durationMs) => {
          if (this.listenerCount('load')) this.emit('load', { key, durationMs });
        },
        loadError: (key, error) => {
          if (this.listenerCount('load-error')) this.emit('load-error', { key, error });
        },
      },
    });
    this.#bus?.start();
  }

  /** Resolves once the invalidation bus is subscribed (L1 and remembered tag versions work from then on). */
  whenReady(): Promise<void> {
    return this.#bus ? this.#bus.whenConnected() : Promise.resolve();
  }

  /** Whether the invalidation bus is subscribed right now. */
  get busConnected(): boolean {
    return this.#bus?.connected ?? false;
  }

  /** Counters since the cache was created. */
  stats(): CacheStats {
    return { ...this.#stats };
  }

  /** The fresh value of `key`, or `undefined` (absent, expired, invalidated, invalid, or Redis failed). */
  async get<S extends StandardSchemaV1 | undefined = undefined, T = unknown>(
    key: string,
    options: ReadOptions<NonNullable<S>> = {},
  ): Promise<ValueOf<S, T> | undefined> {
    checkKey(key, 'Cache.get()');
    const { schema } = this.#resolve(options, 'Cache.get()', noLoader);
    const read = await this.#store.read(key, schema).catch(() => MISS);
    if (read.state === 'fresh' && read.entry.kind === 'value') {
      this.#countHit(key, read.layer, false);
      return read.entry.value as ValueOf<S, T>;
    }
    this.#countMiss(key);
    return undefined;
  }

  /** Whether `key` has a fresh value (`null` counts as one). */
  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /**
   * Stores a value. Resolves `true` once Redis has it, `false` when Redis failed (the cache
   * then simply does not have it).
   * @throws InvalidOptionError for `undefined` or bad options; RedscaleError ERR_SERIALIZATION
   * for a value the serializer cannot store.
   */
  async set(key: string, value: unknown, options: WriteOptions = {}): Promise<boolean> {
    checkKey(key, 'Cache.set()');
    const call = this.#resolve(options, 'Cache.set()', () => value);
    let versions: ReadonlyMap<string, number> | undefined;
    try {
      versions = await this.#filler.versionsBeforeLoad(key, call);
      await this.#store.write(key, value, { ...call, tags: versions, loadMs: 0 });
    } catch (error) {
      if (isCallerError(error)) throw error;
      return false;
    }
    await this.#bus?.publish({ k: [key] });
    return true;
  }

  /**
   * Deletes entries on every instance (Redis, this L1, and other L1s through the bus).
   * Resolves how many Redis had. @throws a RedscaleError when Redis fails.
   */
  async delete(keys: string | string[]): Promise<number> {
    const list = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(list) || list.length === 0) {
      throw new InvalidOptionError('keys', keys, 'a key or a non-empty array of keys', 'Cache.delete()');
    }
    for (const key of list) checkKey(key, 'Cache.delete()');
    const deleted = await this.#store.delete(list);
    this.#stats.deletedKeys += deleted;
    await this.#bus?.publish({ k: list });
    if (this.listenerCount('invalidate')) this.emit('invalidate', { keys: list });
    return deleted;
  }

  /**
   * The value of `key`, loading and storing it on a miss. Concurrent misses share one load in
   * this process; across instances one loads under a lock while the others wait to be told the
   * value is there (then load themselves after `lock.wait`). Within `staleFor` after expiry the
   * old value is returned at once while one background refresh runs, and kept if that refresh
   * fails. A Redis failure never fails the call: the loader's value is returned.
   * Loader errors reach every caller waiting on that load and are not cached (unless `errorTtl`).
   */
  async getOrSet<T, S extends StandardSchemaV1 | undefined = undefined>(
    key: string,
    loader: Loader<T>,
    options: GetOrSetOptions<NonNullable<S>> = {},
  ): Promise<ValueOf<S, T>> {
    checkKey(key, 'Cache.getOrSet()');
    if (typeof loader !== 'function') {
      throw new InvalidOptionError('loader', loader, 'a function that loads the value', 'Cache.getOrSet()');
    }
    const call = this.#resolve(options, 'Cache.getOrSet()', loader);
    let read: ReadResult = MISS;
    let redisFailed = false;
    try {
      read = await this.#store.read(key, call.schema);
    } catch {
      redisFailed = true;
    }
    if (read.state !== 'miss' && read.entry.kind === 'error') {
      if (read.state === 'fresh') throw new CachedLoaderError(key, String(read.entry.value));
    } else if (read.state === 'fresh') {
      this.#countHit(key, read.layer, false);
      if (this.#filler.shouldRefreshEarly(read.entry)) this.#filler.refreshInBackground(key, call);
      return read.entry.value as ValueOf<S, T>;
    } else if (read.state === 'stale') {
      this.#countHit(key, read.layer, true);
      this.#filler.refreshInBackground(key, call);
      return read.entry.value as ValueOf<S, T>;
    }
    this.#countMiss(key);
    return this.#filler.load(key, call, redisFailed) as Promise<ValueOf<S, T>>;
  }

  /**
   * Makes every entry carrying one of `tags` stale, on every instance: one command per hash slot
   * of the tags, however many entries carry them. @throws a RedscaleError when Redis fails.
   */
  async invalidateTags(tags: string[]): Promise<void> {
    if (!Array.isArray(tags) || tags.length === 0 || tags.some((tag) => typeof tag !== 'string' || tag === '')) {
      throw new InvalidOptionError('tags', tags, 'a non-empty array of non-empty strings', 'Cache.invalidateTags()');
    }
    const versions = await this.#tags
      .invalidate([...new Set(tags)], this.#options.ttl + this.#options.staleFor)
      .catch((error: unknown) => {
        throw this.#report(toRedisError('cache invalidate tags', error, { tags }));
      });
    this.#store.tagsChanged();
    this.#stats.invalidatedTags += versions.size;
    await this.#bus?.publish({ t: Object.fromEntries(versions) });
    if (this.listenerCount('invalidate')) this.emit('invalidate', { tags });
  }

  /**
   * Deletes every entry whose key matches `pattern`, a Redis glob relative to the cache's prefix
   * (`'user:42:*'`; use `escapeGlob` for user input): SCAN on every master and UNLINK in batches
   * of 500, never KEYS, so no single command holds Redis for long. Keys outside the prefix cannot
   * match. Resolves how many were deleted. @throws a RedscaleError when Redis fails.
   */
  async invalidatePattern(pattern: string): Promise<number> {
    if (typeof pattern !== 'string' || pattern === '') {
      throw new InvalidOptionError(
        'pattern',
        pattern,
        'a non-empty glob, relative to the cache prefix',
        'Cache.invalidatePattern()',
      );
    }
    const deleted = await unlinkMatching(this.#options.redis, this.#store.keyOf(pattern), PATTERN_BATCH).catch(
      (error: unknown) => {
        throw this.#report(toRedisError('cache invalidate pattern', error, { pattern }));
      },
    );
    this.#store.dropL1Matching(globToRegExp(pattern));
    this.#stats.invalidatedPatternKeys += deleted;
    await this.#bus?.publish({ p: pattern });
    if (this.listenerCount('invalidate')) this.emit('invalidate', { pattern });
    return deleted;
  }

  /** Closes the bus connection. The Redis client is yours: the cache never closes it. */
  async close(): Promise<void> {
    await this.#bus?.close();
  }

  #resolve<T>(options: GetOrSetOptions, where: string, loader: Loader<T>): LoadSpec<T> {
    // The hot path: an empty options object needs no parsing at all.
    let has = false;
    for (const _ in options) {
      has = true;
      break;
    }
    if (!has)
      return {
        ttlMs: this.#options.ttl,
        staleForMs: this.#options.staleFor,
        tags: undefined,
        schema: undefined,
        loader,
      };
    const parsed = parseOptions(writeOptionsSchema, options, where);
    return {
      ttlMs: parsed.ttl ?? this.#options.ttl,
      staleForMs: parsed.staleFor ?? this.#options.staleFor,
      tags: parsed.tags ? [...new Set(parsed.tags)] : undefined,
      schema: parsed.schema,
      loader,
    };
  }

  #onMessage(message: BusMessage): void {
    if (message.i === this.#bus?.id) return;
    if (message.t) {
      this.#tags.learn(message.t);
      this.#store.tagsChanged();
    }
    if (message.k) {
      this.#store.dropL1(message.k);
      this.#filler.wake(message.k);
    }
    if (message.f) this.#filler.wake(message.f);
    if (message.p) this.#store.dropL1Matching(globToRegExp(message.p));
  }

  #countHit(key: string, layer: 'l1' | 'l2', stale: boolean): void {
    if (layer === 'l1') this.#stats.l1Hits++;
    else this.#stats.l2Hits++;
    if (stale) this.#stats.staleServed++;
    if (this.listenerCount('hit')) this.emit('hit', { key, layer, stale });
  }

  #countMiss(key: string): void {
    this.#stats.misses++;
    if (this.listenerCount('miss')) this.emit('miss', { key });
  }

  #report(error: RedscaleError): RedscaleError {
    this.#options.onError?.(error);
    if (this.listenerCount('redis-error')) this.emit('redis-error', { error });
    return error;
  }
}

function checkKey(key: unknown, where: string): asserts key is string {
  if (typeof key !== 'string' || key === '') {
    throw new InvalidOptionError('key', key, 'a non-empty string', where);
  }
}
