import { afterAll, describe, expect, it } from 'vitest';
import { Lock, Semaphore } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * The lock coalescer flushes at most 16 calls at a time: one turn's calls span several
 * flushes. A fair semaphore's waiters issued in one turn must still be served in issue order, and
 * an acquisition issued after a release of its resource must still find it free, wherever the cuts
 * fall (40 waiters: a lone call, then flushes of 16, 16 and 7).
 */
describe.each<Topology>(['standalone', 'cluster'])(
  'lock calls of one turn across several flushes, on %s',
  (topology) => {
    const redis = connect(topology);
    const prefix = randomPrefix('r3-fair-many');
    afterAll(async () => {
      await deletePrefix(redis, prefix);
      redis.disconnect();
    });

    it('40 fair-semaphore waiters issued in one turn are served in issue order', async () => {
      const semaphore = new Semaphore({
        redis,
        prefix,
        limit: 1,
        ttl: '5s',
        wait: '20s',
        timeout: 2_000,
        fair: true,
        retryDelay: { min: 5, max: 20 },
      });
      await (await semaphore.acquire('pool')).release();
      const held = await semaphore.acquire('pool');
      const order: number[] = [];
      const labels = Array.from({ length: 40 }, (_, i) => i);
      const waiters = labels.map(async (label) => {
        const handle = await semaphore.acquire('pool');
        order.push(label);
        await handle.release();
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await held.release();
      await Promise.all(waiters);
      expect(order).toEqual(labels);
    });

    it.each([0, 14, 15, 16, 30, 31])(
      'release then tryAcquire of one resource after %i other calls of the turn',
      async (fillers) => {
        const lock = new Lock({ redis, prefix: `${prefix}:l${fillers}`, ttl: '5s', wait: 0 });
        await (await lock.acquire('warm')).release();
        const held = await lock.acquire('x');
        const first = lock.tryAcquire('first');
        const others = Array.from({ length: fillers }, (_, i) => lock.tryAcquire(`filler${i}`));
        const released = held.release();
        const again = lock.tryAcquire('x');
        expect(await released).toBe(true);
        const handle = await again;
        expect(handle).not.toBeNull();
        for (const h of [await first, ...(await Promise.all(others)), handle]) await h?.release();
      },
    );
  },
);
