import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Cache, InvalidOptionError } from '../../src/index.js';
import { cacheFactory, countingLoader, randomPrefix } from './support.js';

describe('Cache options', () => {
  const factory = cacheFactory('standalone');

  it.each([
    [{ ttl: '5 parsecs' }, '"ttl" for Cache: received "5 parsecs"'],
    [{ ttl: 0 }, '"ttl" for Cache: received 0'],
    [{ staleFor: -1 }, '"staleFor" for Cache: received -1'],
    [{ ttlJitter: 2 }, '"ttlJitter" for Cache: received 2; expected a ratio between 0 and 1'],
    [{ l1: { maxEntries: 0 } }, '"l1.maxEntries" for Cache: received 0'],
    [{ lock: { wait: '1 fortnight' } }, '"lock.wait" for Cache'],
    [
      { serializer: JSON },
      '"serializer" for Cache: received {}; expected an object with serialize(value) and deserialize(text)',
    ],
    [{ prefix: 'a{b' }, '"prefix" for Cache'],
    [{ tll: '5m' }, '"tll" for Cache: received "5m"; expected one of the known options: redis, prefix, ttl'],
    // Durations Redis or timers cannot follow (a timer fires at once past 2^31 − 1 ms).
    [{ ttl: 1e300 }, '"ttl" for Cache: received 1e+300'],
    [{ staleFor: '100000d' }, '"staleFor" for Cache: received "100000d"'],
    [{ lock: { ttl: 2 ** 31 } }, '"lock.ttl" for Cache: received 2147483648'],
    [{ lock: { wait: '30d' } }, '"lock.wait" for Cache: received "30d"'],
    [{ timeout: '30d' }, '"timeout" for Cache: received "30d"'],
    [{ bus: { heartbeat: '30d' } }, '"bus.heartbeat" for Cache: received "30d"'],
    [{ bus: { heartbeat: 0 } }, '"bus.heartbeat" for Cache: received 0'],
    [{ bus: { heartbat: '1s' } }, '"bus.heartbat" for Cache'],
    [{ maxRememberedTags: 0 }, '"maxRememberedTags" for Cache: received 0; expected a positive integer'],
  ])('%j is refused with a message naming the option', (options, expected) => {
    const build = () => new Cache({ redis: factory.redis, ...options } as never);
    expect(build).toThrow(InvalidOptionError);
    expect(build).toThrow(expected);
  });

  it('refuses per-call durations Redis cannot follow, and keys too long for the bus', async () => {
    const cache = await factory.make();
    await expect(cache.set('k', 1, { ttl: '100000d' })).rejects.toThrow(/"ttl" for Cache.set\(\): received "100000d"/);
    await expect(cache.getOrSet('k', () => 1, { staleFor: 1e300 })).rejects.toThrow(/"staleFor" for Cache.getOrSet/);
    await expect(cache.get('k'.repeat(20_000))).rejects.toThrow(/"key" for Cache.get\(\)/);
    await expect(cache.invalidateTags(['t'.repeat(20_000)])).rejects.toThrow(/"tags"/);
    await expect(cache.invalidatePattern('*'.repeat(2_000))).rejects.toThrow(/"pattern"/);
  });

  it('refreshes a hot key early (XFetch) while still answering from the cache', async () => {
    // An enormous beta makes the early refresh certain, so the test is not a coin toss.
    const cache = await factory.make({ earlyRefresh: { beta: 1e9 } });
    const loader = countingLoader('v', { delayMs: 5 });
    expect(await cache.getOrSet('hot', loader)).toBe('v');
    expect(await cache.getOrSet('hot', loader)).toBe('v');
    await sleep(50);
    expect(loader.calls).toBe(2);
    expect(cache.stats()).toMatchObject({ l2Hits: 1, loads: 2 });
    const never = await factory.make({ earlyRefresh: false });
    const quiet = countingLoader('v', { delayMs: 5 });
    await never.getOrSet('hot', quiet);
    await never.getOrSet('hot', quiet);
    await sleep(50);
    expect(quiet.calls).toBe(1);
  });

  it('spreads expiries with ttlJitter', async () => {
    const prefix = randomPrefix('jitter');
    const cache = await factory.make({ prefix, ttl: '100s', ttlJitter: 0.5 });
    await Promise.all(Array.from({ length: 50 }, (_, i) => cache.set(`k${i}`, i)));
    const ttls = await Promise.all(Array.from({ length: 50 }, (_, i) => factory.redis.pttl(`${prefix}:c:k${i}`)));
    for (const ttl of ttls) {
      expect(ttl).toBeGreaterThan(49_000);
      expect(ttl).toBeLessThanOrEqual(150_000);
    }
    expect(new Set(ttls.map((ttl) => Math.round(ttl / 1_000))).size).toBeGreaterThan(10);
  });

  it('stores values with a custom serializer', async () => {
    const cache = await factory.make({
      serializer: { serialize: (value) => `<${String(value)}>`, deserialize: (text) => text.slice(1, -1) },
    });
    await cache.set('k', 'hello');
    expect(await cache.get('k')).toBe('hello');
  });
});
