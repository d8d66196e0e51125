import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Cache, createClient, type RedisLike, type RedscaleError } from '../../src/index.js';
import { deletePrefix, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { FaultProxy } from '../harness/index.js';

const rejections = unhandledRejections();

/**
 * A cache read whose reply lands after the call's deadline: the caller got its answer at the
 * deadline (a miss, or the loader's value), the failure is counted once, and the late reply has
 * no effect (no second count, no L1 fill, no hit counted).
 */
describe('cache reads answered after their deadline', () => {
  let proxy: FaultProxy;
  let redis: RedisLike;
  let direct: RedisLike;
  const prefix = randomPrefix('late-reply');
  beforeAll(async () => {
    proxy = await FaultProxy.start(inject('redisUrl'));
    redis = createClient({ url: proxy.url, onError: quiet });
    direct = createClient({ url: inject('redisUrl'), onError: quiet });
    await Promise.all([redis.ping(), direct.ping()]);
  });
  afterAll(async () => {
    await deletePrefix(direct, prefix);
    redis.disconnect();
    direct.disconnect();
    await proxy.close();
  });

  it.each(['get', 'getOrSet'] as const)('%s: one error counted, the late reply ignored', async (method) => {
    const errors: RedscaleError[] = [];
    const events: RedscaleError[] = [];
    const cache = new Cache({
      redis,
      prefix: `${prefix}:${method}`,
      timeout: 150,
      l1: { maxEntries: 100 },
      circuitBreaker: false,
      onError: (error) => errors.push(error),
    });
    cache.on('redis-error', ({ error }) => events.push(error));
    await cache.whenReady();
    await cache.set('k', 'stored');
    // Another instance's value in Redis only (this cache's L1 has nothing for it).
    const other = new Cache({ redis: direct, prefix: `${prefix}:${method}` });
    await other.set('k2', 'from redis');
    await other.close();

    proxy.set({ kind: 'delay', ms: 300 });
    const value = method === 'get' ? await cache.get('k2') : await cache.getOrSet('k2', () => 'loaded');
    expect(value).toBe(method === 'get' ? undefined : 'loaded');
    const afterCall = cache.stats();
    await sleep(500); // the delayed reply lands
    proxy.set({ kind: 'pass' });
    const later = cache.stats();
    expect(later.redisErrors).toBe(afterCall.redisErrors);
    expect(later.l2Hits).toBe(0);
    expect(events).toHaveLength(later.redisErrors);
    expect(errors).toEqual(events);
    expect(later.redisErrors).toBe(1);
    if (method === 'get') {
      // The late reply did not fill L1: with the link stalled, the next read times out too.
      proxy.set({ kind: 'pause' });
      expect(await cache.get('k2')).toBeUndefined();
      proxy.set({ kind: 'pass' });
      expect(cache.stats().l1Hits).toBe(0);
      expect(cache.stats().redisErrors).toBe(2);
    }
    await cache.close();
    expect(rejections.list).toEqual([]);
  });
});
