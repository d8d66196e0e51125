import { afterAll } from 'vitest';
import { Cache, type CacheOptions, type RedisLike } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/** Caches on one topology with fresh prefixes; closes them and deletes their keys afterwards. */
export function cacheFactory(topology: Topology) {
  const redis: RedisLike = connect(topology);
  const made: Array<{ cache: Cache; redis: RedisLike; prefix: string }> = [];
  afterAll(async () => {
    for (const { cache, prefix } of made) {
      await cache.close();
      await deletePrefix(redis, prefix);
    }
    for (const entry of made) if (entry.redis !== redis) entry.redis.disconnect();
    redis.disconnect();
  });
  return {
    redis,
    /** A cache; pass `separateClient` to act as another instance (its own connections and bus). */
    async make(options: Omit<CacheOptions, 'redis'> = {}, separateClient = false): Promise<Cache> {
      const prefix = options.prefix ?? randomPrefix('cache');
      const client = separateClient ? connect(topology) : redis;
      const cache = new Cache({ ...options, prefix, redis: client });
      made.push({ cache, redis: client, prefix });
      await cache.whenReady();
      return cache;
    },
  };
}

/** A loader that counts its calls and can be slowed down or made to fail. */
export function countingLoader<T>(value: T, options: { delayMs?: number; fail?: () => boolean } = {}) {
  const loader = async () => {
    loader.calls++;
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    if (options.fail?.()) throw new Error(`load failed (call ${loader.calls})`);
    return value;
  };
  loader.calls = 0;
  return loader;
}

export { randomPrefix };
