import { describe, expect, it } from 'vitest';
import { fixedWindow, scanEveryMaster, slidingWindow } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { type Backend, limiterFactory } from './support.js';

/**
 * On the server's clock the lean multi-limit script's keys expire as the general script's do: a
 * fixed window's key when its window ends, a sliding window's when the next window ends. No key
 * is left without an expiry, whatever mix of consumes (admitted and refused), hits, peeks,
 * refunds and batches wrote it.
 */
describe.each<Backend>(['standalone', 'cluster'])('lean script keys on the server clock (%s)', (backend) => {
  const factory = limiterFactory(backend);

  it('every key has an expiry no longer than its window allows', async () => {
    const prefix = randomPrefix('wexp');
    const limiter = factory.make({
      prefix,
      limits: [
        fixedWindow({ limit: 3, window: '2s' }),
        slidingWindow({ limit: 4, window: '1s' }),
        slidingWindow({ limit: 50, window: '1m' }),
        fixedWindow({ limit: 60, window: '1h' }),
      ],
    });
    const ids = ['a', 'b', 'c'];
    for (let round = 0; round < 6; round++) {
      await Promise.all(ids.flatMap((id) => [limiter.consume(id), limiter.consume(id, { cost: 2 }), limiter.peek(id)]));
      await Promise.all(ids.map((id) => limiter.hit(id)));
      await limiter.refund('b', { cost: 3 });
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const redis = factory.redis;
    if (!redis) throw new Error('no redis');
    let seen = 0;
    for await (const keys of scanEveryMaster(redis, { match: `${prefix}*` })) {
      for (const key of keys) {
        const match = /:(f|s)(\d+)$/.exec(key);
        if (!match) continue;
        seen++;
        const pttl = await redis.pttl(key);
        const window = Number(match[2]);
        expect({ key, pttl: pttl > 0 }).toEqual({ key, pttl: true });
        expect(pttl).toBeLessThanOrEqual(match[1] === 'f' ? window : 2 * window);
      }
    }
    expect(seen).toBeGreaterThan(0);
  });
});
