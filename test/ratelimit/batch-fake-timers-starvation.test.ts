import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { fixedWindow, RateLimiter } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * A batch goes at a quarter of the checks in flight; the rest of a queue waits for `setImmediate` or for the last reply in flight. Under fake timers
 * (`setImmediate` never runs) a steady stream of one operation keeps a reply in flight forever,
 * so a check of another operation (a peek, a cost-2 consume) queued behind a threshold above 1
 * never goes: it waits for its deadline and is answered by the `onRedisError` policy instead of
 * Redis — unless a queue still waiting after a whole reply turn goes at the end of the next one.
 * On a Cluster (one pipeline per node) 12, 16 and 32 consumers starved it without that rule.
 */
describe.each<Topology>(['standalone', 'cluster'])(
  'batcher under fake timers with a busy limiter, on %s',
  (topology) => {
    const redis = connect(topology);
    const prefix = randomPrefix('r3-starve');
    afterEach(() => {
      vi.useRealTimers();
    });
    afterAll(async () => {
      await deletePrefix(redis, prefix);
      redis.disconnect();
    });

    it.each([
      ['a peek', 12, (rl: RateLimiter) => rl.peek('other')],
      ['a cost-2 consume', 12, (rl: RateLimiter) => rl.consume('other', { cost: 2 })],
      ['a peek', 16, (rl: RateLimiter) => rl.peek('other')],
      ['a cost-2 consume', 16, (rl: RateLimiter) => rl.consume('other', { cost: 2 })],
      ['a peek', 32, (rl: RateLimiter) => rl.peek('other')],
    ])('%s among %i looping consumers is answered by Redis, not by its deadline', async (name, workerCount, other) => {
      const errors: unknown[] = [];
      const rl = new RateLimiter({
        redis,
        prefix: `${prefix}:${name.length}:${workerCount}`,
        limits: fixedWindow({ limit: 1_000_000, window: '1h' }),
        timeout: 250,
        onError: (error) => errors.push(error),
      });
      // Warm: connections open, every node has the script.
      await Promise.all(Array.from({ length: workerCount }, (_, i) => rl.peek(`w${i}`)));
      await rl.consume('other', { cost: 2 });
      vi.useFakeTimers({ toFake: ['setImmediate', 'setTimeout', 'setInterval', 'Date'] });

      let stop = false;
      let rounds = 0;
      const started = performance.now();
      const workers = Array.from({ length: workerCount }, async (_, i) => {
        // Each worker checks again as soon as its reply comes (a busy server's request loop).
        while (!stop && performance.now() - started < 1_500) {
          await rl.consume(`w${i}`);
          rounds++;
        }
      });
      // Let the loop get going, then issue the other operation's check.
      while (rounds < 64)
        await rl
          .peek('tick')
          .catch(() => undefined)
          .then(() => undefined);
      const result = await other(rl);
      stop = true;
      await Promise.all(workers);

      expect({ source: result.source, errors: errors.length }).toEqual({ source: 'redis', errors: 0 });
    });
  },
);
