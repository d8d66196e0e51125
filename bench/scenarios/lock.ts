import type { Redis } from 'ioredis';
import { MultiSemaphore, Mutex, Semaphore as RedisSemaphore } from 'redis-semaphore';
import Redlock from 'redlock';
import { Lock, Semaphore } from '../../src/index.js';
import { cyclingNames } from '../lib/names.js';
import type { Scenario } from '../lib/types.js';
import { bareGet } from './ceiling.js';

/** A different resource on each operation, cycling through 10,000: uncontended locking. */
const nextResource = cyclingNames('invoice', 10_000);

/** Acquire then release a lock: the cost of guarding one piece of work. */
export const lockScenario: Scenario = {
  name: 'lock',
  description:
    'Acquire and release an uncontended lock on one of 10,000 resources: two round trips at best, at 8 and 64 in flight. redscale also hands out a fencing token in the same acquire call.',
  concurrencies: [8, 64],
  contenders: (ctx) => [
    bareGet(ctx),
    {
      name: 'redscale Lock acquire+release',
      kind: 'redscale',
      setup: async () => {
        const lock = new Lock({ redis: ctx.redis, prefix: ctx.prefix, ttl: '10s' });
        return async () => (await lock.acquire(nextResource())).release();
      },
    },
    {
      name: 'redlock 4 lock+unlock',
      kind: 'peer',
      setup: async () => {
        const redlock = new Redlock([ctx.redis as never], { retryCount: 10, retryDelay: 200 });
        return async () => (await redlock.lock(`${ctx.prefix}:redlock:${nextResource()}`, 10_000)).unlock();
      },
    },
    {
      name: 'redis-semaphore Mutex acquire+release',
      kind: 'peer',
      setup: async () => {
        return async () => {
          const mutex = new Mutex(ctx.redis as Redis, `${ctx.prefix}:semaphore:${nextResource()}`, {
            lockTimeout: 10_000,
            refreshInterval: 0,
          });
          await mutex.acquire();
          await mutex.release();
        };
      },
    },
  ],
};

/** Five resources shared by every worker: contended, so holders wait for a free permit. */
const nextShared = cyclingNames('partner', 5);

/**
 * Take and give back permits of a counting semaphore: on 10,000 resources (uncontended), and on 5
 * shared ones with a limit of 5 (64 workers contending, so most acquisitions wait).
 */
export const semaphoreScenario: Scenario = {
  name: 'semaphore',
  description:
    "Acquire and release one permit of a counting semaphore (limit 5) on one of 10,000 resources, redscale's Semaphore beside redis-semaphore's; and two permits at once (redis-semaphore's MultiSemaphore). Both hold a permit as a sorted-set member with a lease.",
  contenders: (ctx) => [
    bareGet(ctx),
    {
      name: 'redscale Semaphore acquire+release',
      kind: 'redscale',
      setup: async () => {
        const semaphore = new Semaphore({ redis: ctx.redis, prefix: ctx.prefix, limit: 5, ttl: '10s' });
        return async () => (await semaphore.acquire(nextResource())).release();
      },
    },
    {
      name: 'redis-semaphore Semaphore acquire+release',
      kind: 'peer',
      setup: async () => async () => {
        const semaphore = new RedisSemaphore(ctx.redis as Redis, `${ctx.prefix}:rsem:${nextResource()}`, 5, {
          lockTimeout: 10_000,
          refreshInterval: 0,
        });
        await semaphore.acquire();
        await semaphore.release();
      },
    },
    {
      name: 'redscale Semaphore, 2 permits',
      kind: 'redscale',
      setup: async () => {
        const semaphore = new Semaphore({ redis: ctx.redis, prefix: `${ctx.prefix}:2`, limit: 5, ttl: '10s' });
        return async () => (await semaphore.acquire(nextResource(), { permits: 2 })).release();
      },
    },
    {
      name: 'redis-semaphore MultiSemaphore, 2 permits',
      kind: 'peer',
      setup: async () => async () => {
        const semaphore = new MultiSemaphore(ctx.redis as Redis, `${ctx.prefix}:rmsem:${nextResource()}`, 5, 2, {
          lockTimeout: 10_000,
          refreshInterval: 0,
        });
        await semaphore.acquire();
        await semaphore.release();
      },
    },
    {
      name: 'redscale Semaphore, 5 shared resources (contended)',
      kind: 'redscale',
      setup: async () => {
        const semaphore = new Semaphore({
          redis: ctx.redis,
          prefix: `${ctx.prefix}:shared`,
          limit: 5,
          ttl: '10s',
          wait: '30s',
          retryDelay: { min: '1ms', max: '20ms' },
        });
        return async () => (await semaphore.acquire(nextShared())).release();
      },
    },
    {
      name: 'redis-semaphore Semaphore, 5 shared resources (contended)',
      kind: 'peer',
      setup: async () => async () => {
        const semaphore = new RedisSemaphore(ctx.redis as Redis, `${ctx.prefix}:rshared:${nextShared()}`, 5, {
          lockTimeout: 10_000,
          acquireTimeout: 30_000,
          retryInterval: 5,
          refreshInterval: 0,
        });
        await semaphore.acquire();
        await semaphore.release();
      },
    },
  ],
};
