import { afterAll, describe, expect, it } from 'vitest';
import { Lock, Semaphore } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/**
 * Calls issued in one turn on one connection used to run in the order they were issued (ioredis
 * writes them in order). Coalescing must keep that order wherever two calls touch the same keys:
 * a release issued before an acquisition of the same resource must run first.
 */
describe('coalesced lock calls keep the order of calls on the same keys', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('coalesce-order');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('lock: release then tryAcquire of the same resource in one turn grants the second', async () => {
    const lock = new Lock({ redis, prefix, ttl: '5s', wait: 0 });
    await (await lock.acquire('warm')).release();
    const held = await lock.acquire('x');
    // The first call goes alone; the next three are queued behind it and flushed together.
    const first = lock.tryAcquire('z');
    const other = lock.tryAcquire('y');
    const released = held.release();
    const again = lock.tryAcquire('x');
    expect(await released).toBe(true);
    const handle = await again;
    expect(handle).not.toBeNull();
    for (const h of [await first, await other, handle]) await h?.release();
  });

  it('semaphore: release then tryAcquire of a full semaphore in one turn grants the second', async () => {
    const semaphore = new Semaphore({ redis, prefix: `${prefix}:sem`, limit: 1, ttl: '5s', wait: 0 });
    await (await semaphore.acquire('warm')).release();
    const held = await semaphore.acquire('pool');
    const first = semaphore.tryAcquire('other');
    const other = semaphore.tryAcquire('other2');
    const released = held.release();
    const again = semaphore.tryAcquire('pool');
    expect(await released).toBe(true);
    const handle = await again;
    expect(handle).not.toBeNull();
    for (const h of [await first, await other, handle]) await h?.release();
  });
});
