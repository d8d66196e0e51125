import { performance } from 'node:perf_hooks';
import { messageOf, RedscaleError, toRedisError } from '../common/errors.js';
import type { LockHandle } from '../lock/handle.js';
import type { Lock } from '../lock/lock.js';
import type { InvalidationBus } from './bus.js';
import type { ResolvedCacheOptions } from './options.js';
import type { StandardSchemaV1 } from './schema.js';
import type { CacheStats } from './stats.js';
import type { Entry, EntryStore, ReadResult } from './store.js';
import type { TagVersions } from './tags.js';

/** Produces a value on a miss. */
export type Loader<T> = () => Promise<T> | T;

/** One getOrSet call, resolved against the cache's defaults. */
export interface LoadSpec<T> {
  ttlMs: number;
  staleForMs: number;
  tags: string[] | undefined;
  schema: StandardSchemaV1 | undefined;
  loader: Loader<T>;
}

/** A loader failure the cache remembered (`errorTtl`): thrown without running the loader again. */
export class CachedLoaderError extends RedscaleError {
  constructor(key: string, message: string) {
    super('ERR_LOADER_FAILED', `redscale: loading "${key}" failed recently: ${message}`, { context: { key } });
  }
}

/** What the filler works with; the cache owns all of it. */
export interface FillContext {
  options: ResolvedCacheOptions;
  store: EntryStore;
  tags: TagVersions;
  locks: Lock;
  bus: InvalidationBus | undefined;
  stats: CacheStats;
  report(error: RedscaleError): RedscaleError;
  events: { load(key: string, durationMs: number): void; loadError(key: string, error: unknown): void };
}

const MISS: ReadResult = { state: 'miss' };

/** Errors the caller caused (bad values, bad options): thrown, never absorbed as a Redis failure. */
export function isCallerError(error: unknown): boolean {
  return error instanceof RedscaleError && (error.code === 'ERR_INVALID_OPTION' || error.code === 'ERR_SERIALIZATION');
}

/**
 * Callers waiting, in this process, for another instance to finish loading a key. The bus wakes
 * them when that instance writes the key (or reports its load failed); otherwise they wake after
 * `ms` and look for themselves (polling is the fallback when the bus is down).
 */
class FillWaiters {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves when `key` is announced, or after `ms`. */
  wait(key: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(key);
      if (!set) {
        set = new Set();
        this.#waiting.set(key, set);
      }
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiting.get(key) === waiters) this.#waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      timer.unref?.();
      waiters.add(done);
    });
  }

  /** Wakes everyone waiting for these keys. */
  wake(keys: readonly string[]): void {
    for (const key of keys) {
      const waiters = this.#waiting.get(key);
      if (waiters) for (const done of [...waiters]) done();
    }
  }

  /** Wakes everyone (the bus dropped: announcements may have been missed). */
  wakeAll(): void {
    for (const waiters of [...this.#waiting.values()]) for (const done of [...waiters]) done();
  }
}

/**
 * Fills the cache on a miss, so that one load serves everyone: concurrent misses in this process
 * share one promise; across instances one caller loads under the fill lock while the others wait
 * to be woken by the bus (or poll) and read the value it wrote, loading themselves only after
 * `lock.wait`. Also runs background refreshes (stale-while-revalidate, early refresh), at most
 * one per key across instances.
 */
export class Filler {
  readonly #context: FillContext;
  readonly #waiters = new FillWaiters();
  readonly #loading = new Map<string, Promise<unknown>>();
  readonly #refreshing = new Set<string>();

  constructor(context: FillContext) {
    this.#context = context;
  }

  /** Wakes callers waiting for another instance's load of these keys (the bus said they changed). */
  wake(keys: readonly string[]): void {
    this.#waiters.wake(keys);
  }

  /** Wakes every waiter (the bus dropped: announcements may have been missed). */
  wakeAll(): void {
    this.#waiters.wakeAll();
  }

  /** Loads `key` once per instance: concurrent callers in this process share the load. */
  load<T>(key: string, call: LoadSpec<T>, redisFailed: boolean): Promise<T> {
    const pending = this.#loading.get(key);
    if (pending) return pending as Promise<T>;
    const load = this.#loadOnce(key, call, redisFailed).finally(() => this.#loading.delete(key));
    this.#loading.set(key, load);
    return load;
  }

  /** One load per instance: under the fill lock, or after waiting for whoever holds it. */
  async #loadOnce<T>(key: string, call: LoadSpec<T>, redisFailed: boolean): Promise<T> {
    if (redisFailed) return this.#runLoader(key, call, null, false);
    const deadline = performance.now() + this.#context.options.lock.wait;
    let waited = false;
    for (;;) {
      let handle: LockHandle | null;
      try {
        handle = await this.#context.locks.tryAcquire(key, { autoExtend: true });
      } catch (error) {
        this.#context.report(toRedisError('cache fill lock', error, { key }));
        return this.#runLoader(key, call, null, false);
      }
      if (handle) {
        // Someone may have filled it between our miss and our lock.
        const again = await this.#context.store.read(key, call.schema).catch(() => MISS);
        if (again.state === 'fresh' && again.entry.kind === 'value') {
          await handle.release().catch(() => false);
          return again.entry.value as T;
        }
        return this.#runLoader(key, call, handle, true);
      }
      if (!waited) {
        waited = true;
        this.#context.stats.lockWaits++;
      }
      const left = deadline - performance.now();
      if (left <= 0) return this.#runLoader(key, call, null, true);
      // Woken by the bus when the loader writes (or fails); polling covers a missing bus.
      await this.#waiters.wait(key, Math.min(left, this.#context.bus?.connected ? 250 : 50));
      const filled = await this.#context.store.read(key, call.schema).catch(() => MISS);
      if (filled.state === 'fresh') {
        if (filled.entry.kind === 'error') throw new CachedLoaderError(key, String(filled.entry.value));
        return filled.entry.value as T;
      }
    }
  }

  /** Runs the loader and stores its value; `cacheable` is false when Redis is known to be failing. */
  async #runLoader<T>(key: string, call: LoadSpec<T>, handle: LockHandle | null, cacheable: boolean): Promise<T> {
    let versions: ReadonlyMap<string, number> | undefined;
    if (cacheable && call.tags) {
      // Read before loading: an invalidation during the load must make this value stale.
      versions = await this.versionsBeforeLoad(key, call).catch(() => {
        cacheable = false;
        return undefined;
      });
    }
    this.#context.stats.loads++;
    const started = performance.now();
    let value: T;
    try {
      value = await call.loader();
    } catch (error) {
      this.#context.stats.loadErrors++;
      this.#context.events.loadError(key, error);
      if (cacheable && this.#context.options.errorTtl > 0) {
        const spec = {
          ttlMs: this.#context.options.errorTtl,
          staleForMs: 0,
          tags: versions,
          loadMs: performance.now() - started,
        };
        await this.#context.store.write(key, messageOf(error), spec, 'error').catch(() => {});
      }
      await this.#context.bus?.publish({ f: [key] });
      await handle?.release().catch(() => false);
      throw error;
    }
    const loadMs = performance.now() - started;
    this.#context.events.load(key, loadMs);
    try {
      if (cacheable && value !== undefined) {
        await this.#context.store.write(key, value, { ...call, tags: versions, loadMs });
        await this.#context.bus?.publish({ k: [key] });
      }
    } catch (error) {
      if (isCallerError(error)) {
        await handle?.release().catch(() => false);
        throw error;
      }
    }
    await handle?.release().catch(() => false);
    return value;
  }

  /** Refreshes `key` in the background, unless this instance or another one already is. */
  refreshInBackground<T>(key: string, call: LoadSpec<T>): void {
    if (this.#refreshing.has(key) || this.#loading.has(key)) return;
    this.#refreshing.add(key);
    (async () => {
      const handle = await this.#context.locks.tryAcquire(key, { autoExtend: true }).catch(() => null);
      if (handle) await this.#runLoader(key, call, handle, true);
    })()
      // Stale-if-error: the failure is counted and the stale value keeps being served.
      .catch(() => {})
      .finally(() => this.#refreshing.delete(key));
  }

  /** XFetch: refresh early with a probability that grows as expiry nears, scaled by the load's duration. */
  shouldRefreshEarly(entry: Entry): boolean {
    const early = this.#context.options.earlyRefresh;
    if (!early || entry.loadMs <= 0) return false;
    return Date.now() - entry.loadMs * early.beta * Math.log(Math.random()) >= entry.freshUntil;
  }

  async versionsBeforeLoad(key: string, call: { tags: string[] | undefined; ttlMs: number; staleForMs: number }) {
    if (!call.tags) return undefined;
    const tags = call.tags;
    const lifetime = call.ttlMs + call.staleForMs;
    return this.#context.store.call('cache tags', key, () => this.#context.tags.current(tags, lifetime, true));
  }
}
