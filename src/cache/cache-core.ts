import { EventEmitter } from 'node:events';
import { InvalidOptionError, RedscaleError } from '../common/errors.js';
import { parseOptions } from '../common/options.js';
import { type CacheOperationMessage, traced, tracing } from '../observability/channels.js';
import { InvalidationBus } from './bus.js';
import type { BusMessage } from './bus-protocol.js';
import { Coherence } from './coherence.js';
import { FillLocks } from './fill-lock.js';
import { Filler } from './filler.js';
import { Budget, RedisGate } from './gate.js';
import { type GetOrSetContext, getOrSet } from './get-or-set.js';
import {
  checkKey,
  clearAll,
  deleteKeys,
  forget,
  forgetMatching,
  type InvalidationContext,
  invalidatePattern,
  invalidateTags,
} from './invalidation.js';
import { isCallerError, type Loader, type LoadSpec } from './load.js';
import type { ManyContext } from './many.js';
import {
  type CacheOptions,
  cacheOptionsSchema,
  type GetOrSetOptions,
  type ReadOptions,
  type ResolvedCacheOptions,
  resolveCall,
  type WhenReadyOptions,
  type WriteOptions,
  whenReadySchema,
} from './options.js';
import { compileGlob } from './patterns.js';
import { CacheReporter } from './reporter.js';
import type { InferOutput, StandardSchemaV1 } from './schema.js';
import type { CacheEvents, CacheStats } from './stats.js';
import { EntryStore } from './store.js';
import { TagVersions } from './tags.js';

type ValueOf<S, T> = S extends StandardSchemaV1 ? InferOutput<S> : T;

/**
 * Everything of {@link Cache} but its many-key methods: one key at a time, invalidations, the
 * bus, L1 and counters. Use {@link Cache}.
 */
export class CacheCore extends EventEmitter<CacheEvents> {
  readonly #options: ResolvedCacheOptions;
  readonly #coherence = new Coherence();
  readonly #gate: RedisGate;
  readonly #tags: TagVersions;
  readonly #store: EntryStore;
  readonly #bus: InvalidationBus | undefined;
  readonly #filler: Filler;
  readonly #report: CacheReporter;
  readonly #getOrSetContext: GetOrSetContext;
  readonly #invalidation: InvalidationContext;
  /** What {@link Cache}'s many-key methods work with. */
  protected readonly many: ManyContext;
  #closed = false;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: CacheOptions) {
    super();
    const resolved = parseOptions(cacheOptionsSchema, options, 'Cache');
    this.#options = resolved;
    const { redis, prefix } = resolved;
    this.#report = new CacheReporter(this, resolved);
    this.#gate = new RedisGate(redis, resolved.circuitBreaker, {
      redisError: (error) => this.#report.redisError(error),
      skipped: () => this.#report.stats.breakerSkips++,
      breaker: (node, state) => this.#report.breakerChanged(node, state),
    });
    this.#tags = new TagVersions(this.#gate, prefix, this.#coherence, resolved.maxRememberedTags);
    const locks = new FillLocks(this.#gate, prefix, resolved.lock.ttl);
    this.#store = new EntryStore(resolved, this.#gate, this.#tags, this.#coherence, locks);
    this.#filler = new Filler({
      options: resolved,
      store: this.#store,
      tags: this.#tags,
      locks,
      coherence: this.#coherence,
      stats: this.#report.stats,
      announce: (message) => {
        this.#bus?.publish(message, new Budget(resolved.timeout)).catch(() => {});
      },
      events: {
        load: (key, durationMs) => this.#report.send('load', { key, durationMs }),
        loadError: (key, error) => this.#report.send('load-error', { key, error }),
      },
    });
    this.#getOrSetContext = {
      options: resolved,
      store: this.#store,
      filler: this.#filler,
      coherence: this.#coherence,
      report: this.#report,
    };
    this.#invalidation = {
      options: resolved,
      gate: this.#gate,
      store: this.#store,
      tags: this.#tags,
      coherence: this.#coherence,
      filler: this.#filler,
      report: this.#report,
      publish: async (message, budget) => {
        await this.#bus?.publish(message, budget);
      },
    };
    this.many = {
      options: resolved,
      store: this.#store,
      tags: this.#tags,
      filler: this.#filler,
      coherence: this.#coherence,
      publish: async (message, budget) => {
        await this.#bus?.publish(message, budget);
      },
      hit: (key, layer) => this.#report.hit(key, layer, false, undefined),
      miss: (key) => this.#report.miss(key, undefined),
      checkKey,
    };
    if (resolved.bus) {
      this.#bus = new InvalidationBus(
        this.#gate,
        { channel: `${prefix}:bus`, heartbeatMs: resolved.bus.heartbeat, timeoutMs: resolved.timeout },
        {
          message: (message) => this.#onMessage(message),
          up: () => this.#coherence.up(),
          down: (cause) => this.#busDown(cause),
          dropped: (error, report) => this.#report.busMessageDropped(error, report),
          redisError: (error) => this.#report.redisError(error),
        },
      );
      this.#bus.start();
    }
  }

  /**
   * Resolves once the invalidation bus delivers (L1 and remembered tag versions work from then
   * on; without a bus, at once). Rejects with ERR_TIMEOUT when that takes longer than `timeout`
   * (default 5 s: Redis is down or unreachable), ERR_ABORTED when `signal` aborts, and
   * ERR_CLOSED after {@link close}.
   */
  async whenReady(options: WhenReadyOptions = {}): Promise<void> {
    const { timeout, signal } = parseOptions(whenReadySchema, options, 'Cache.whenReady()');
    if (this.#closed) throw new RedscaleError('ERR_CLOSED', 'redscale: the cache was closed');
    await this.#bus?.whenConnected(timeout, signal);
  }

  /** Whether the invalidation bus delivers right now (subscribed, and its last heartbeat came back). */
  get busConnected(): boolean {
    return this.#bus?.connected ?? false;
  }

  /** Counters since the cache was created. */
  stats(): CacheStats {
    return { ...this.#report.stats, rememberedTags: this.#tags.size };
  }

  /**
   * Share of reads answered from the cache (L1, L2 and stale hits over hits and misses) since it
   * was created, or `null` before the first read. For health endpoints and dashboards.
   */
  hitRate(): number | null {
    return this.#report.hitRate();
  }

  /** Each Redis node's circuit breaker state, by node address (`'standalone'` for one Redis). */
  circuitBreakers(): Record<string, 'closed' | 'open' | 'half-open'> {
    return this.#gate.breakerStates();
  }

  /** The fresh value of `key`, or `undefined` (absent, expired, invalidated, invalid, or Redis failed). */
  get<S extends StandardSchemaV1 | undefined = undefined, T = unknown>(
    key: string,
    options: ReadOptions<NonNullable<S>> = NO_OPTIONS as ReadOptions<NonNullable<S>>,
  ): Promise<ValueOf<S, T> | undefined> {
    const channel = tracing.cacheGet;
    if (!traced(channel)) return this.#get(key, options, undefined) as Promise<ValueOf<S, T> | undefined>;
    const message = this.#message('get', key);
    return channel.tracePromise(this.#get, message, this, key, options, message) as Promise<ValueOf<S, T> | undefined>;
  }

  #get(key: string, options: ReadOptions, message: CacheOperationMessage | undefined): Promise<unknown> {
    let schema: StandardSchemaV1 | undefined;
    try {
      checkKey(key, 'Cache.get()');
      schema = this.#resolve(options, 'Cache.get()', noLoader).schema;
    } catch (error) {
      return Promise.reject(error);
    }
    const budget = new Budget(this.#options.timeout);
    // As getOrSet: the hit is answered inside the read's one promise; a failed read is a miss.
    return this.#store.readThen(key, schema, budget, this.#coherence.snapshot(), (read) => {
      if (read?.state === 'fresh' && read.entry.kind === 'value') {
        this.#report.hit(key, read.layer, false, message);
        return read.entry.value;
      }
      this.#report.miss(key, message);
      return undefined;
    });
  }

  /** Whether `key` has a fresh value (`null` counts as one). */
  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /**
   * Stores a value. Resolves `true` once Redis has it and every instance has been told, `false`
   * when Redis failed (the cache then may not have it, and other L1s may keep the old value until
   * they hear of it or it expires: write again). A load of the key that was running elsewhere will
   * not overwrite it.
   * @throws InvalidOptionError for `undefined` or bad options; RedscaleError ERR_SERIALIZATION
   * for a value the serializer cannot store (the default JSON one names the path).
   */
  set(key: string, value: unknown, options: WriteOptions = {}): Promise<boolean> {
    const channel = tracing.cacheSet;
    if (!traced(channel)) return this.#set(key, value, options);
    return channel.tracePromise(this.#set, this.#message('set', key), this, key, value, options);
  }

  async #set(key: string, value: unknown, options: WriteOptions): Promise<boolean> {
    checkKey(key, 'Cache.set()');
    const call = this.#resolve(options, 'Cache.set()', () => value);
    const prepared = this.#store.prepare(key, value);
    const budget = new Budget(this.#options.timeout);
    const since = this.#coherence.snapshot();
    try {
      const versions = await this.#filler.versionsBeforeLoad(call, budget, since);
      const encoded = this.#store.encode(prepared, { ...call, tags: versions, loadMs: 0 });
      if (!(await this.#store.set(key, encoded, budget))) return false;
      this.#store.l1?.fill(key, encoded.entry, since, Date.now());
      this.#coherence.keysChanged([key]);
      this.#filler.detach([key]);
      await this.#bus?.publish({ k: [key] }, budget);
    } catch (error) {
      if (isCallerError(error)) throw error;
      return false;
    }
    return true;
  }

  /**
   * Deletes entries on every instance (Redis, this L1, and other L1s through the bus); a load of
   * one of them that is running anywhere will not write its value back. Resolves how many Redis
   * had. @throws a RedscaleError when Redis or the bus failed (the caller must know).
   */
  delete(keys: string | string[]): Promise<number> {
    const channel = tracing.cacheInvalidate;
    if (!traced(channel)) return this.#delete(keys);
    const message = this.#message('delete', Array.isArray(keys) ? keys[0] : keys);
    return channel.tracePromise(this.#delete, message, this, keys);
  }

  #delete(keys: string | string[]): Promise<number> {
    return deleteKeys(this.#invalidation, keys);
  }

  /**
   * The value of `key`, loading and storing it on a miss. Concurrent misses share one load in
   * this process; across instances one loads under a fill lock while the others wait to be told
   * the value is there (and load themselves, without storing, after `lock.wait` or as soon as the
   * loader is announced to have failed). Within `staleFor` after expiry the old value is returned
   * at once while one background refresh runs, and kept if that refresh fails. A Redis failure
   * never fails the call: the loader's value is returned. What is returned on a miss is what
   * every instance will read: the serializer's round trip of the loader's value. The loader
   * receives a {@link LoadContext} to adapt its entry (ttl, staleFor, tags) or skip storing it;
   * `softTimeout`, `hardTimeout` and `forceFresh` bound the wait or bypass the cached value.
   * @throws LoaderTimeoutError past `hardTimeout`; the loader's error (to every caller waiting on that load; not cached unless
   * `errorTtl`); InvalidOptionError naming the key when the loader returns `undefined`.
   */
  getOrSet<T, S extends StandardSchemaV1 | undefined = undefined>(
    key: string,
    loader: Loader<T>,
    options: GetOrSetOptions<NonNullable<S>> = NO_OPTIONS as GetOrSetOptions<NonNullable<S>>,
  ): Promise<ValueOf<S, T>> {
    const channel = tracing.cacheGetOrSet;
    if (!traced(channel)) return this.#getOrSet(key, loader, options, undefined) as Promise<ValueOf<S, T>>;
    const message = this.#message('getOrSet', key);
    return channel.tracePromise(this.#getOrSet, message, this, key, loader, options, message) as Promise<ValueOf<S, T>>;
  }

  #getOrSet(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions,
    message: CacheOperationMessage | undefined,
  ): Promise<unknown> {
    let call: LoadSpec<unknown>;
    try {
      checkKey(key, 'Cache.getOrSet()');
      if (typeof loader !== 'function') {
        throw new InvalidOptionError('loader', loader, 'a function that loads the value', 'Cache.getOrSet()');
      }
      call = resolveCall(this.#options, options, 'Cache.getOrSet()', loader, true);
    } catch (error) {
      // A bad argument rejects, as it always has; it never throws at the caller.
      return Promise.reject(error);
    }
    return getOrSet(this.#getOrSetContext, key, call, message);
  }

  /**
   * Makes every entry carrying one of `tags` stale, on every instance: one command per hash slot
   * of the tags, however many entries carry them. @throws a RedscaleError when Redis or the bus failed.
   */
  invalidateTags(tags: string[]): Promise<void> {
    const channel = tracing.cacheInvalidate;
    if (!traced(channel)) return this.#invalidateTags(tags);
    const message: CacheOperationMessage = { prefix: this.#options.prefix, operation: 'invalidateTags', tags };
    return channel.tracePromise(this.#invalidateTags, message, this, tags);
  }

  #invalidateTags(tags: string[]): Promise<void> {
    return invalidateTags(this.#invalidation, tags);
  }

  /**
   * Deletes every entry whose key matches `pattern`, a Redis glob relative to the cache's prefix
   * (`'user:42:*'`; use `escapeGlob` for user input): SCAN on every master and deletes in batches
   * of 500, never KEYS, so no single command holds Redis for long; each of those calls has the
   * cache's `timeout`. The prefix is escaped, so keys outside it never match. Resolves how many
   * were deleted. @throws a RedscaleError when Redis or the bus failed.
   */
  invalidatePattern(pattern: string): Promise<number> {
    const channel = tracing.cacheInvalidate;
    if (!traced(channel)) return this.#invalidatePattern(pattern);
    const message: CacheOperationMessage = { prefix: this.#options.prefix, operation: 'invalidatePattern', pattern };
    return channel.tracePromise(this.#invalidatePattern, message, this, pattern);
  }

  #invalidatePattern(pattern: string): Promise<number> {
    return invalidatePattern(this.#invalidation, pattern);
  }

  /**
   * Deletes everything in the cache's namespace (`<prefix>:*`: entries, fill locks and tag
   * versions), on every instance: SCAN on every master and UNLINK in batches, as
   * {@link invalidatePattern} does. Loads running meanwhile do not store what they loaded.
   * Resolves how many entries were deleted. @throws a RedscaleError when Redis or the bus failed.
   */
  clear(): Promise<number> {
    return clearAll(this.#invalidation);
  }

  /**
   * Closes the bus connection and stops its heartbeat; `whenReady()` rejects from now on.
   * The Redis client is yours: the cache never closes it.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#bus?.close();
  }

  #resolve(options: GetOrSetOptions, where: string, loader: Loader<unknown>): LoadSpec<unknown> {
    return resolveCall(this.#options, options, where, loader);
  }

  #onMessage(message: BusMessage): void {
    if (message.t) this.#tags.learn(message.t);
    if (message.k) {
      forget(this.#invalidation, message.k);
      this.#filler.wake(message.k, 'written');
    }
    if (message.f) this.#filler.wake(message.f, 'failed');
    if (message.p) forgetMatching(this.#invalidation, compileGlob(message.p));
  }

  #busDown(cause: 'drop' | 'heartbeat'): void {
    this.#coherence.down();
    this.#store.l1?.clear();
    this.#tags.forget();
    this.#filler.wakeAll();
    if (!this.#closed) this.#report.busDown(cause);
  }

  #message(operation: CacheOperationMessage['operation'], key: string | undefined): CacheOperationMessage {
    return key === undefined
      ? { prefix: this.#options.prefix, operation }
      : { prefix: this.#options.prefix, operation, key };
  }
}

const noLoader = () => undefined;

/** The options of a call given none (shared: the hot path allocates nothing for them). */
const NO_OPTIONS: GetOrSetOptions = Object.freeze({});
