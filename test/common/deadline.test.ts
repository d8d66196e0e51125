import { afterAll, describe, expect, it } from 'vitest';
import {
  fileDeadline,
  type Pending,
  pendingDeadlines,
  settleDeadline,
  untilDeadline,
} from '../../src/common/deadline.js';
import { RedisTimeoutError } from '../../src/common/errors.js';
import { fixedWindow, RateLimiter, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

describe('deadlines on the shared sweeper', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('deadline');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('a call answered in time leaves nothing waiting, and a late one rejects with a timeout', async () => {
    await expect(untilDeadline(Promise.resolve(7), performance.now() + 1_000, 1_000, 'op')).resolves.toBe(7);
    expect(pendingDeadlines()).toBe(0);
    const never = new Promise<never>(() => {});
    const late = untilDeadline(never, performance.now() + 20, 20, 'op');
    expect(pendingDeadlines()).toBe(1);
    await expect(late).rejects.toBeInstanceOf(RedisTimeoutError);
    expect(pendingDeadlines()).toBe(0);
  });

  it('batched limiter checks answered by Redis are settled: none is left for the sweeper to time out', async () => {
    for (const limits of [
      fixedWindow({ limit: 1_000, window: '1m' }),
      [slidingWindow({ limit: 1_000, window: '1s' }), fixedWindow({ limit: 1_000, window: '1d' })],
    ]) {
      const limiter = new RateLimiter({ redis, prefix: `${prefix}:${Array.isArray(limits) ? 2 : 1}`, limits });
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => limiter.consume(`id-${i % 50}`)));
      expect(results.every((result) => result.allowed && result.source === 'redis')).toBe(true);
      expect(pendingDeadlines()).toBe(0);
      expect(limiter.stats().redisErrors).toBe(0);
    }
  });
});

describe('the shared sweeper', () => {
  // An entry whose expiry settles another entry of the same granule (a batch failing its members)
  // must count each once: counted twice, the sweeper stopped while a later call was still filed,
  // and that call never timed out.
  it('keeps its count when an expiry settles another entry of the same granule', async () => {
    const at = performance.now() + 10;
    const sibling: Pending = { settled: false, expire: () => settleDeadline(sibling) };
    const first: Pending = { settled: false, expire: () => settleDeadline(sibling) };
    fileDeadline(first, at);
    fileDeadline(sibling, at);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const later = untilDeadline(new Promise<never>(() => {}), performance.now() + 30, 30, 'op');
    const outcome = await Promise.race([
      later.then(
        () => 'resolved',
        (error: unknown) => (error instanceof RedisTimeoutError ? 'timed out' : 'failed'),
      ),
      new Promise((resolve) => setTimeout(resolve, 1_000, 'hung')),
    ]);
    expect(outcome).toBe('timed out');
  });
});
