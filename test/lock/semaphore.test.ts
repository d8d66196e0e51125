import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  LockLostError,
  LockTimeoutError,
  Semaphore,
  type SemaphoreHandle,
} from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const topologies: Array<[Topology, string]> = [
  ['standalone', ''],
  ['cluster', ''],
  ['cluster', 'kp:'],
];

describe.each(topologies)('Semaphore on %s (client keyPrefix "%s")', (topology, keyPrefix) => {
  const redis = connect(topology, keyPrefix ? { redisOptions: { keyPrefix } } : {});
  const prefix = randomPrefix('sem');
  const semaphore = (limit: number, options: { fair?: boolean; ttl?: number } = {}) =>
    new Semaphore({ redis, prefix, limit, ttl: options.ttl ?? 2_000, wait: '1s', fair: options.fair ?? false });
  const keysOf = (resource: string) => ({
    holders: `${prefix}:sem:{${resource}}`,
    fence: `${prefix}:sem:{${resource}}:fence`,
    queue: `${prefix}:sem:{${resource}}:queue`,
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('lets at most `limit` holders in, each in one round trip, and the next one in when a permit comes back', async () => {
    const sem = semaphore(3);
    // The first command on a Cluster node's fresh connection is counted twice (queued, then sent).
    await (await sem.acquire('pool')).release();
    const held: SemaphoreHandle[] = [];
    for (let i = 0; i < 3; i++) {
      const log = await countCommands(async () => {
        held.push(await sem.acquire('pool'));
      });
      expect(log).toEqual({ count: 1, names: ['evalsha'] });
    }
    expect(await sem.tryAcquire('pool')).toBeNull();
    expect(await redis.zcard(keysOf('pool').holders)).toBe(3);
    const error = await sem.acquire('pool', { wait: 150 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_LOCK_TIMEOUT', resource: 'pool' });

    const waiting = sem.acquire('pool', { wait: '2s' });
    await sleep(50);
    expect(await held[0]?.release()).toBe(true);
    const fourth = await waiting;
    expect(fourth.held).toBe(true);
    const fences = [...held.map((handle) => handle.fence), fourth.fence];
    expect(new Set(fences).size).toBe(4);
    expect(fourth.fence).toBeGreaterThan(Math.max(...held.map((handle) => handle.fence)));
    for (const handle of [...held.slice(1), fourth]) {
      expect((await countCommands(async () => expect(await handle.release()).toBe(true))).count).toBe(1);
    }
    // The last holder gone, the holders key is gone; the fence key expires on its own.
    expect(await redis.exists(keysOf('pool').holders)).toBe(0);
    expect(await redis.pttl(keysOf('pool').fence)).toBeGreaterThan(0);
  });

  it('counts permits: a holder may take several, never more than the limit in all', async () => {
    const sem = semaphore(5);
    const three = await sem.acquire('weights', { permits: 3 });
    expect(three.permits).toBe(3);
    expect(await sem.tryAcquire('weights', { permits: 3 })).toBeNull();
    const two = await sem.tryAcquire('weights', { permits: 2 });
    expect(two?.permits).toBe(2);
    expect(await sem.tryAcquire('weights')).toBeNull();
    expect(await three.release()).toBe(true);
    const again = await sem.tryAcquire('weights', { permits: 3 });
    expect(again).not.toBeNull();
    await Promise.all([two?.release(), again?.release()]);
    await expect(sem.acquire('weights', { permits: 6 })).rejects.toThrow(
      /"permits" for Semaphore.acquire\(\): received 6; expected an integer from 1 to the limit, 5/,
    );
  });

  it('frees the permits of a holder that died when its ttl runs out; its late release cannot free another holder', async () => {
    const sem = semaphore(1, { ttl: 200 });
    const dead = await sem.acquire('crash');
    await sleep(300);
    expect(dead.held).toBe(false);
    const next = await sem.acquire('crash', { ttl: 5_000 });
    expect(next.fence).toBeGreaterThan(dead.fence);
    expect(await dead.release()).toBe(false);
    await expect(dead.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await sem.tryAcquire('crash')).toBeNull();
    expect(await next.release()).toBe(true);
  });

  it('extends by hand and automatically, and aborts the signal when the permits are lost', async () => {
    const sem = semaphore(1, { ttl: 300 });
    const handle = await sem.acquire('extend');
    await handle.extend(5_000);
    expect(await redis.zscore(keysOf('extend').holders, `${handle.token}:1`)).not.toBeNull();
    expect(Number(await redis.pttl(keysOf('extend').holders))).toBeGreaterThan(4_000);
    await handle.release();

    let rivalWins = 0;
    const rival = new Semaphore({ redis, prefix, limit: 1, wait: 0 });
    // Generous: a loaded machine can stall the event loop for a good part of a short ttl.
    await sem.withPermit(
      'auto',
      async ({ signal }) => {
        for (let i = 0; i < 6; i++) {
          await sleep(300);
          if (await rival.tryAcquire('auto')) rivalWins++;
        }
        expect(signal.aborted).toBe(false);
      },
      { ttl: 1_000 },
    );
    expect(rivalWins).toBe(0);

    const lapsing = await sem.acquire('lapse', { ttl: 150 });
    const { signal } = lapsing;
    await sleep(250);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'expired', resource: 'lapse' });
    await expect(sem.withPermit('lapse', () => sleep(300), { ttl: 150, autoExtend: false })).rejects.toBeInstanceOf(
      LockLostError,
    );
  });

  it('fair: waiters get permits in the order they asked', async () => {
    const sem = semaphore(1, { fair: true });
    const holder = await sem.acquire('fifo');
    const order: string[] = [];
    const waiters = ['a', 'b', 'c'].map(async (name, i) => {
      await sleep(60 * i);
      const handle = await sem.acquire('fifo', { wait: '5s' });
      order.push(name);
      await sleep(20);
      await handle.release();
    });
    await sleep(250);
    await holder.release();
    await Promise.all(waiters);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(await redis.exists(keysOf('fifo').queue)).toBe(0);
  });

  it('fair: a big request queued first is not starved by small ones; not fair: the small one goes first', async () => {
    for (const fair of [true, false]) {
      const resource = `big-${fair}`;
      const sem = semaphore(2, { fair });
      const holder = await sem.acquire(resource);
      const order: string[] = [];
      const big = sem.acquire(resource, { permits: 2, wait: '5s' }).then(async (handle) => {
        order.push('big');
        await handle.release();
      });
      await sleep(100);
      const small = sem.acquire(resource, { wait: '5s' }).then(async (handle) => {
        order.push('small');
        await sleep(50);
        await handle.release();
      });
      await sleep(100);
      await holder.release();
      await Promise.all([big, small]);
      expect(order).toEqual(fair ? ['big', 'small'] : ['small', 'big']);
    }
  });

  it('fair: tryAcquire does not jump the queue, and a waiter that gives up leaves it at once', async () => {
    const sem = new Semaphore({ redis, prefix, limit: 1, fair: true, retryDelay: { min: 5, max: 20 } });
    const holder = await sem.acquire('queue');
    const quitter = sem.acquire('queue', { wait: 150 }).catch((error: unknown) => error);
    await sleep(20);
    const patient = sem.acquire('queue', { wait: '5s' });
    expect(await quitter).toBeInstanceOf(LockTimeoutError);
    await holder.release();
    // The quitter's place is gone: the patient waiter, next in line, gets the permit long before
    // the quitter's place would have expired (3 × (retryDelay.max + timeout)).
    const started = performance.now();
    const next = await patient;
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(await sem.tryAcquire('queue')).toBeNull();
    await next.release();

    const again = await sem.acquire('queue');
    const queued = sem.acquire('queue', { wait: '5s' });
    await sleep(50);
    await again.release();
    // A permit is free, but a waiter asked first.
    expect(await sem.tryAcquire('queue')).toBeNull();
    await (await queued).release();
    expect(await sem.tryAcquire('queue')).not.toBeNull();
  });
});

describe('Semaphore options', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it.each([
    [() => new Semaphore({ redis } as never), '"limit" for Semaphore: received undefined'],
    [
      () => new Semaphore({ redis, limit: 0 }),
      '"limit" for Semaphore: received 0; expected an integer from 1 to 10000',
    ],
    [() => new Semaphore({ redis, limit: 2.5 }), '"limit" for Semaphore: received 2.5'],
    [() => new Semaphore({ redis, limit: 10_001 }), '"limit" for Semaphore: received 10001'],
    [() => new Semaphore({ redis, limit: 2, fair: 'yes' as never }), '"fair" for Semaphore: received "yes"'],
    [() => new Semaphore({ redis, limit: 2, ttl: 1e300 }), '"ttl" for Semaphore: received 1e+300'],
    [() => new Semaphore({ redis, limit: 2, limits: 3 } as never), '"limits" for Semaphore'],
  ])('%#: rejects bad options naming the option', (build, expected) => {
    expect(build).toThrow(InvalidOptionError);
    expect(build).toThrow(expected);
  });

  it('rejects bad per-call options', async () => {
    const sem = new Semaphore({ redis, limit: 2, prefix: randomPrefix('semopts') });
    await expect(sem.acquire('')).rejects.toThrow(/"resource" for Semaphore.acquire\(\)/);
    await expect(sem.acquire('r', { permits: 0 })).rejects.toThrow(/"permits" for Semaphore.acquire\(\): received 0/);
    await expect(sem.tryAcquire('r', { permit: 1 } as never)).rejects.toThrow(/"permit" for Semaphore.tryAcquire\(\)/);
    await expect(sem.withPermit('r', 5 as never)).rejects.toThrow(/"fn" for Semaphore.withPermit\(\)/);
  });
});
