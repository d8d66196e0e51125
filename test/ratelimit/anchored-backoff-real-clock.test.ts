import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { fixedWindow, RateLimiter, scanEveryMaster } from '../../src/index.js';
import { deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * An admitted anchored window reports its end: the contract test proves it on a
 * caller's clock (ARGV now, keys without expiry). On the server's clock, through a client with an
 * ioredis keyPrefix (standalone and Cluster), batched and alone, with one limit (the anchored
 * script) and two (the general one): the resetAt a call admitted in a lengthened window reports is
 * the window's end, which is also when its key expires.
 */
describe.each<Topology>(['standalone', 'cluster'])(
  'backoff window on the server clock with a keyPrefix, on %s',
  (topology) => {
    const keyPrefix = `${randomPrefix('r3-kp')}:`;
    const redis =
      topology === 'cluster'
        ? new Cluster(inject('clusterNodes'), { keyPrefix })
        : new Redis(inject('redisUrl'), { keyPrefix });
    const plain = topology === 'cluster' ? new Cluster(inject('clusterNodes')) : new Redis(inject('redisUrl'));
    afterAll(async () => {
      await deletePrefix(plain, keyPrefix);
      redis.disconnect();
      plain.disconnect();
    });

    it.each([
      ['alone', 1, false],
      ['beside another limit', 2, false],
      ['alone, batched with 20 other identities', 1, true],
      ['beside another limit, batched with 20 other identities', 2, true],
    ] as const)('%s: resetAt is the lengthened window end and the key expiry', async (name, count, crowd) => {
      const backoff = fixedWindow({ limit: 10, window: '3s', anchor: 'first-hit', whenExceeded: 'backoff' });
      const limiter = new RateLimiter({
        redis,
        prefix: `rl${name.length}`,
        limits: count === 1 ? backoff : [backoff, fixedWindow({ limit: 100, window: '1h' })],
        localDenyCache: false,
      });
      await limiter.consume('u', { cost: 4 });
      const over = await limiter.hit('u', { cost: 8 });
      expect(over.allowed).toBe(false);
      // 12 of 10: the window restarts 3 s × 2 = 6 s long.
      expect(over.limits[0]?.resetAt).toBe(over.resetAt);
      await limiter.refund('u', { cost: 3 });
      const others = crowd ? Array.from({ length: 20 }, (_, i) => limiter.consume(`o${i}`)) : [];
      const admitted = await limiter.consume('u');
      await Promise.all(others);
      expect(admitted).toMatchObject({ allowed: true, remaining: 0 });
      const resetAt = admitted.limits[0]?.resetAt as number;
      expect(resetAt).toBe(over.limits[0]?.resetAt);
      expect(resetAt - admitted.decidedAt).toBeGreaterThan(5_000);
      expect(resetAt - admitted.decidedAt).toBeLessThanOrEqual(6_000);
      // The key of the backoff limit expires at the window's end.
      let ttl = -3;
      for await (const keys of scanEveryMaster(plain, { match: `${keyPrefix}rl${name.length}*` })) {
        for (const key of keys) {
          const t = await plain.pttl(key);
          if (t > ttl && t < 10_000) ttl = t;
        }
      }
      // PTTL was read some time after the decision: the expiry it implies is at most that early.
      const expiresAt = admitted.decidedAt + ttl;
      expect(expiresAt).toBeLessThanOrEqual(resetAt + 50);
      expect(expiresAt).toBeGreaterThanOrEqual(resetAt - (Date.now() - admitted.decidedAt) - 50);
    });
  },
);
