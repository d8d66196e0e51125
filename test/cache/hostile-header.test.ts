import { afterAll, describe, expect, inject, it } from 'vitest';
import { Cache, createClient, type RedisLike } from '../../src/index.js';
import { deletePrefix, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';

const rejections = unhandledRejections();

/**
 * Stored entries with hostile headers (the one-pass decoder reads digits in place): each is a
 * miss, never a crash or a wrong value, through every read path; undecodable ones are deleted.
 */
describe('entries with hostile headers', () => {
  const redis: RedisLike = createClient({ url: inject('redisUrl'), onError: quiet });
  const prefix = randomPrefix('hostile-header');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  const later = () => String(Date.now() + 60_000);
  const cases: Array<[string, () => string, boolean]> = [
    ['huge digits', () => `1|${'9'.repeat(400)}|${'9'.repeat(400)}|0||"bad"`, true],
    ['non-ASCII digits', () => `1|١٢٣|${later()}|0||"bad"`, true],
    ['fullwidth digits', () => `1|${later()}|１２３|0||"bad"`, true],
    ['NaN', () => `1|NaN|${later()}|0||"bad"`, true],
    ['Infinity', () => `1|Infinity|Infinity|0||"bad"`, true],
    ['negative stale', () => `1|-5|-5|0||"bad"`, false],
    ['empty fields', () => `1||||"bad"`, false],
    ['truncated after kind', () => '1|', true],
    ['truncated in header', () => `1|${later()}|${later()}`, true],
    ['tags not numbers', () => `1|${later()}|${later()}|0|{"t":"1"}|"bad"`, true],
    ['tags not JSON', () => `1|${later()}|${later()}|0|{t|"bad"`, true],
    ['payload not JSON', () => `1|${later()}|${later()}|0||{bad`, true],
    ['NUL bytes', () => `1|${later()}\u0000|${later()}|0||"bad"`, true],
  ];

  it.each(cases)('%s: a miss through get, getMany and getOrSet', async (name, text, deleted) => {
    const cache = new Cache({ redis, prefix: `${prefix}:${name.replace(/\W/g, '')}`, l1: { maxEntries: 10 } });
    await cache.whenReady();
    const key = `${prefix}:${name.replace(/\W/g, '')}:c:k`;
    await redis.set(key, text(), 'PX', 60_000);
    expect(await cache.get('k')).toBeUndefined();
    await redis.set(key, text(), 'PX', 60_000);
    expect(await cache.getMany(['k'])).toEqual([undefined]);
    if (deleted) {
      await redis.set(key, text(), 'PX', 60_000);
      expect(await cache.get('k')).toBeUndefined();
      for (let i = 0; i < 50 && (await redis.exists(key)) === 1; i++) await new Promise((r) => setTimeout(r, 10));
      expect(await redis.exists(key)).toBe(0);
    }
    await redis.set(key, text(), 'PX', 60_000);
    expect(await cache.getOrSet('k', () => 'loaded')).toBe('loaded');
    expect(await cache.get('k')).toBe('loaded');
    await cache.close();
    expect(rejections.list).toEqual([]);
  });
});
