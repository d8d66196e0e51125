import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import type { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { Cache, type RedisLike } from '../../src/index.js';
import type { ContenderKind } from '../lib/types.js';

/** One library's cache-aside call, as its documentation sets it up. */
export interface CacheAdapter {
  getOrSet(key: string, loader: () => Promise<unknown>): Promise<unknown>;
  close(): Promise<void>;
}

export interface CacheLibrary {
  name: string;
  kind: ContenderKind;
  make(context: { redis: RedisLike; url: string; prefix: string }): Promise<CacheAdapter>;
}

const TTL_MS = 300_000;

/**
 * A hand-written getOrSet as services write it without a library (a typical plan's, ../shared/seeds/004 §1.3): GET, JSON.parse, and on a
 * miss load and SETEX — no stampede protection, as written.
 */
function handWrittenGetOrSet(redis: Redis, prefix: string): CacheAdapter['getOrSet'] {
  return async (key, fetcher) => {
    const cacheKey = `${prefix}:${key}`;
    try {
      const cached = await redis.get(cacheKey);
      if (cached) return JSON.parse(cached);
    } catch {
      // such code logs and falls through
    }
    const data = await fetcher();
    try {
      await redis.setex(cacheKey, TTL_MS / 1_000, JSON.stringify(data));
    } catch {
      // such code logs and carries on
    }
    return data;
  };
}

export const CACHE_LIBRARIES: Record<string, CacheLibrary> = {
  redscale: {
    name: 'redscale Cache (L2)',
    kind: 'redscale',
    make: async ({ redis, prefix }) => {
      const cache = new Cache({ redis, prefix, ttl: TTL_MS, l1: false });
      await cache.whenReady();
      return { getOrSet: (key, loader) => cache.getOrSet(key, loader), close: () => cache.close() };
    },
  },
  'redscale-l1': {
    name: 'redscale Cache (L1 + L2)',
    kind: 'redscale',
    make: async ({ redis, prefix }) => {
      const cache = new Cache({ redis, prefix, ttl: TTL_MS, l1: { maxEntries: 10_000 } });
      await cache.whenReady();
      return { getOrSet: (key, loader) => cache.getOrSet(key, loader), close: () => cache.close() };
    },
  },
  bentocache: {
    name: 'bentocache (L2)',
    kind: 'peer',
    make: async ({ redis, prefix }) => {
      const bento = new BentoCache({
        default: 'cache',
        prefix,
        stores: { cache: bentostore().useL2Layer(redisDriver({ connection: redis as Redis })) },
      });
      return {
        getOrSet: (key, loader) => bento.getOrSet({ key, factory: loader, ttl: TTL_MS }),
        close: async () => {},
      };
    },
  },
  'bentocache-l1': {
    name: 'bentocache (L1 + L2)',
    kind: 'peer',
    make: async ({ redis, prefix }) => {
      const bento = new BentoCache({
        default: 'cache',
        prefix,
        stores: {
          cache: bentostore()
            .useL1Layer(memoryDriver({ maxItems: 10_000 }))
            .useL2Layer(redisDriver({ connection: redis as Redis })),
        },
      });
      return {
        getOrSet: (key, loader) => bento.getOrSet({ key, factory: loader, ttl: TTL_MS }),
        close: async () => {},
      };
    },
  },
  'cache-manager': {
    name: 'cache-manager + @keyv/redis',
    kind: 'peer',
    make: async ({ url, prefix }) => {
      const keyv = new Keyv({ store: new KeyvRedis(url), namespace: prefix });
      const cache = createCache({ stores: [keyv] });
      return {
        getOrSet: (key, loader) => cache.wrap(key, loader, TTL_MS),
        close: async () => {
          await cache.disconnect();
        },
      };
    },
  },
  'hand-written': {
    name: 'hand-written getOrSet (GET, load, SETEX)',
    kind: 'hand-written',
    make: async ({ redis, prefix }) => ({
      getOrSet: handWrittenGetOrSet(redis as Redis, prefix),
      close: async () => {},
    }),
  },
};
