import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * The local deny cache answers a refusal without asking Redis, so it can contradict Redis after
 * the identity was forgiven elsewhere. It trusts a refusal for at most `localDenyCache.maxAge`
 * (default 1 s): that is the documented bound on how long a reset on another instance, or keys
 * deleted in Redis by hand, go unnoticed here.
 */
describe.each<Topology>(['standalone', 'cluster'])(
  'the local deny cache follows Redis within maxAge (%s)',
  (topology) => {
    const redis = connect(topology);
    const prefixes: string[] = [];
    afterAll(async () => {
      for (const prefix of prefixes) await deletePrefix(redis, prefix);
      redis.disconnect();
    });

    function instances(maxAge?: number) {
      const prefix = randomPrefix('deny');
      prefixes.push(prefix);
      const options = {
        redis,
        prefix,
        limits: fixedWindow({ limit: 1, window: '1h' }),
        blockFor: '30m',
        timeout: '5s',
      } as const;
      return {
        prefix,
        a: new RateLimiter(options),
        b: new RateLimiter({ ...options, localDenyCache: maxAge === undefined ? {} : { maxAge } }),
      };
    }

    /** Calls `consume` until it is admitted; returns how long that took after `since`. */
    async function admittedWithin(limiter: RateLimiter, since: number, limitMs: number): Promise<number> {
      for (;;) {
        const result = await limiter.consume('u');
        if (result.allowed) return performance.now() - since;
        if (performance.now() - since > limitMs)
          throw new Error(`still refused (${result.reason}) after ${limitMs} ms`);
        await sleep(20);
      }
    }

    it('a reset() on another instance reaches this one within maxAge (default 1 s)', async () => {
      const { a, b } = instances();
      await b.consume('u');
      expect(await b.consume('u')).toMatchObject({ allowed: false, reason: 'limit' });
      // Refused for 30 minutes, and remembered: the next refusal costs no command.
      const local = await countCommands(async () =>
        expect(await b.consume('u')).toMatchObject({ allowed: false, reason: 'local-block' }),
      );
      expect(local.count).toBe(0);

      await a.reset('u');
      const resetAt = performance.now();
      const took = await admittedWithin(b, resetAt, 3_000);
      expect(took).toBeLessThan(1_000 + 300);
    });

    it('keys deleted in Redis by hand (an admin unblock) reach it within a shorter maxAge', async () => {
      const { b, prefix } = instances(200);
      await b.consume('u');
      expect(await b.consume('u')).toMatchObject({ allowed: false });
      expect(await b.consume('u')).toMatchObject({ reason: 'local-block' });

      const root = `${prefix}:rl:{u}:`;
      expect(await redis.unlink(`${root}block`, `${root}f3600000`)).toBe(2);
      const deletedAt = performance.now();
      const took = await admittedWithin(b, deletedAt, 3_000);
      expect(took).toBeLessThan(200 + 300);
    });
  },
);
