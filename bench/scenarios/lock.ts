import type { Redis } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import Redlock from 'redlock';
import { Lock } from '../../src/index.js';
import { cyclingNames } from '../lib/names.js';
import type { Scenario } from '../lib/types.js';
import { bareGet } from './ceiling.js';

/** A different resource on each operation, cycling through 10,000: uncontended locking. */
const nextResource = cyclingNames('invoice', 10_000);

/** Acquire then release a lock: the cost of guarding one piece of work. */
export const lockScenario: Scenario = {
  name: 'lock',
  description:
    'Acquire and release an uncontended lock on one of 10,000 resources: two round trips at best. redscale also hands out a fencing token in the same acquire call.',
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
