import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Lock, LockLostError, type RedscaleError, Semaphore } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

describe.each<Topology>(['standalone', 'cluster'])('await using on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('using');
  const errors: RedscaleError[] = [];
  const lock = new Lock({ redis, prefix, ttl: '2s', onError: (error) => errors.push(error) });
  const semaphore = new Semaphore({ redis, prefix, limit: 1, ttl: '2s' });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('releases a lock, a set of locks and a permit when the scope exits', async () => {
    {
      await using held = await lock.acquire('scoped');
      await using all = await lock.acquireAll(['scoped-a', 'scoped-b']);
      await using permit = await semaphore.acquire('scoped');
      expect([held.held, all.held, permit.held]).toEqual([true, true, true]);
      expect(await lock.tryAcquire('scoped')).toBeNull();
      expect(await lock.tryAcquire('scoped-b')).toBeNull();
      expect(await semaphore.tryAcquire('scoped')).toBeNull();
    }
    expect(await redis.exists(`${prefix}:lock:{scoped}`, `${prefix}:sem:{scoped}`)).toBe(0);
    const again = await lock.tryAcquireAll(['scoped', 'scoped-a', 'scoped-b']);
    expect(again).not.toBeNull();
    await again?.release();
  });

  it('releases when the scope throws, and lets the error through', async () => {
    const run = async () => {
      await using _held = await lock.acquire('throws');
      throw new Error('boom');
    };
    await expect(run()).rejects.toThrow('boom');
    expect(await redis.exists(`${prefix}:lock:{throws}`)).toBe(0);
  });

  it('rejects with the LockLostError when the lock was lost inside the scope, as withLock does', async () => {
    const run = async () => {
      await using _held = await lock.acquire('lost', { ttl: 100 });
      await sleep(200);
      return 'finished';
    };
    await expect(run()).rejects.toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'expired', resource: 'lost' });

    const failing = async () => {
      await using _held = await lock.acquire('lost-and-failed', { ttl: 100 });
      await sleep(200);
      throw new Error('work failed');
    };
    const error = (await failing().catch((caught: unknown) => caught)) as { error: unknown; suppressed: unknown };
    // The language's rule: the dispose error wins, the scope's error is kept as `suppressed`.
    expect(error.error).toBeInstanceOf(LockLostError);
    expect(error.suppressed).toEqual(new Error('work failed'));
  });

  it('does nothing more when the handle was released by hand: the next holder keeps its lock', async () => {
    const before = errors.length;
    let next!: Awaited<ReturnType<Lock['acquire']>>;
    {
      await using held = await lock.acquire('by-hand');
      expect(await held.release()).toBe(true);
      next = await lock.acquire('by-hand');
    }
    expect(await redis.get(`${prefix}:lock:{by-hand}`)).toBe(next.token);
    expect(next.held).toBe(true);
    expect(await next.release()).toBe(true);
    expect(errors.length).toBe(before);
  });
});
