import { CacheCore } from './cache-core.js';
import type { LoadContext } from './load-context.js';
import { readMany, type SetManyEntry, writeMany } from './many.js';
import { type GetOrSetOptions, type ReadOptions, resolveCall } from './options.js';
import type { InferOutput, StandardSchemaV1 } from './schema.js';
import { prefetchEntries, type WarmEntry, type WarmOptions, type WarmReport, warmEntries } from './warm.js';

type ValueOf<S, T> = S extends StandardSchemaV1 ? InferOutput<S> : T;

const noLoader = () => undefined;

/**
 * Cache-aside on Redis with stampede protection across instances, stale-while-revalidate,
 * O(1) tag invalidation, pattern invalidation by SCAN, and an optional in-process L1 kept
 * coherent by an invalidation bus. Reads and `getOrSet` never fail because of Redis: a slow or
 * down Redis is a miss, and `getOrSet` returns the loader's value. Writes resolve `false` when
 * Redis (or the bus) did not take them; deletes and invalidations reject, since the caller must
 * know. Every call spends at most `timeout` on Redis, all its steps together.
 *
 * @example
 * ```ts
 * const cache = new Cache({ redis, prefix: 'app', ttl: '5m', staleFor: '1m', l1: { maxEntries: 10_000 } })
 * const user = await cache.getOrSet(`user:${id}`, () => db.user(id), { tags: [`user:${id}`], schema: User })
 * await cache.invalidateTags([`user:${id}`])
 * ```
 */
export class Cache extends CacheCore {
  /**
   * The fresh values of `keys`, in their order (`undefined` where there is none, as {@link get}
   * would say): L1 first, then one MGET per hash slot of the rest (one in all on a standalone
   * Redis), all sent at once. Never rejects because of Redis: a slot that failed reads as misses.
   */
  async getMany<S extends StandardSchemaV1 | undefined = undefined, T = unknown>(
    keys: readonly string[],
    options: ReadOptions<NonNullable<S>> = {},
  ): Promise<Array<ValueOf<S, T> | undefined>> {
    const { schema } = resolveCall(this.many.options, options, 'Cache.getMany()', noLoader);
    return readMany(this.many, keys, schema) as Promise<Array<ValueOf<S, T> | undefined>>;
  }

  /**
   * Stores many entries, each with its own `ttl`, `staleFor` and `tags`: one tag-version read for
   * all their tags, one script per hash slot (one in all on a standalone Redis), one announcement.
   * Like {@link set}, resolves `true` once Redis has them all and every instance has been told,
   * `false` when Redis failed for some (those of the slots that answered are stored).
   * @throws InvalidOptionError for bad entries or repeated keys; RedscaleError ERR_SERIALIZATION
   * for a value the serializer cannot store (nothing is written then).
   */
  setMany(entries: readonly SetManyEntry[]): Promise<boolean> {
    return writeMany(this.many, entries);
  }

  /**
   * Warms the cache: `getOrSet` for each entry (its key, loader and options), at most
   * `concurrency` (default 8) at a time, with the usual stampede protection, so instances that
   * start together load each key once between them. Resolves a report; a key that fails is
   * listed there, never thrown. @throws InvalidOptionError when `entries` or the options are not valid.
   */
  warm(entries: readonly WarmEntry[], options: WarmOptions = {}): Promise<WarmReport> {
    return warmEntries(entries, options, (key, loader, call) => this.getOrSet(key, loader, call), 'Cache.warm()');
  }

  /**
   * {@link warm} with one loader for many keys: `loader(key, context)` runs for each key that is
   * not fresh in the cache, at most `concurrency` at a time; the other options apply to every key.
   */
  async prefetch<T>(
    keys: readonly string[],
    loader: (key: string, context: LoadContext) => Promise<T> | T,
    options: GetOrSetOptions & WarmOptions = {},
  ): Promise<WarmReport> {
    const { concurrency, signal, ...call } = options;
    const warmOptions = { ...(concurrency === undefined ? {} : { concurrency }), ...(signal ? { signal } : {}) };
    return this.warm(prefetchEntries(keys, loader, call, 'Cache.prefetch()'), warmOptions);
  }
}
