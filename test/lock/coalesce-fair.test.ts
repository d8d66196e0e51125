import { afterAll, describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/**
 * A fair semaphore serves waiters in arrival order. Waiters whose first tries run in one batched
 * script run all read the same server time: they must still queue in the order they were issued.
 */
describe('fair semaphore waiters batched into one run', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('coalesce-fair');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('are served in the order they were issued', async () => {
    const semaphore = new Semaphore({
      redis,
      prefix,
      limit: 1,
      ttl: '5s',
      wait: '5s',
      fair: true,
      retryDelay: { min: 5, max: 20 },
    });
    await (await semaphore.acquire('pool')).release();
    const held = await semaphore.acquire('pool');
    const order: string[] = [];
    const labels = ['a', 'b', 'c', 'd', 'e', 'f'];
    // The first try goes alone; the others are queued behind it and run as one script call.
    const waiters = labels.map(async (label) => {
      const handle = await semaphore.acquire('pool');
      order.push(label);
      await new Promise((resolve) => setTimeout(resolve, 10));
      await handle.release();
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await held.release();
    await Promise.all(waiters);
    expect(order).toEqual(labels);
  });
});
