import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lock, Semaphore } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { deletePrefix, randomPrefix, unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { type Proxied, proxied } from './proxied.js';

const rejections = unhandledRejections();

/**
 * A run of several calls whose reply was lost is resent whole by ioredis after a reconnection:
 * every call in it must stay idempotent (an acquisition answered again as a grant with its own
 * token, permits held once, a release that finds nothing left to release).
 */
describe('a batched run of lock calls resent after a reconnection', () => {
  let link: Proxied;
  const prefix = randomPrefix('coalesce-replay');
  beforeAll(async () => {
    link = await proxied('standalone');
  });
  afterAll(async () => {
    await deletePrefix(link.direct, prefix);
    await link.close();
  });

  it('lock acquisitions: each holds its lock with its own token, fences rising', async () => {
    const lock = new Lock({ redis: link.redis, prefix, ttl: '20s', timeout: 3_000, wait: 0 });
    const names = ['a', 'b', 'c', 'd', 'e'];
    const warm = await Promise.all(names.map((name) => lock.acquire(name)));
    await Promise.all(warm.map((handle) => handle.release()));
    link.set({ kind: 'drop-replies' });
    let handles: Awaited<ReturnType<Lock['acquire']>>[] = [];
    const log = await countCommands(async () => {
      const pending = Promise.all(names.map((name) => lock.acquire(name)));
      await waitUntil('every acquisition to run in Redis', async () => {
        const held = await link.direct.exists(...names.map((name) => `${prefix}:lock:{${name}}`));
        return held === names.length;
      });
      link.set({ kind: 'pass' });
      link.resetAll();
      handles = await pending;
    });
    // The first alone, the other four in one run (both resent once).
    expect(log.count).toBeGreaterThanOrEqual(2);
    expect(log.count).toBeLessThanOrEqual(4);
    handles.forEach((handle, i) => {
      expect(handle.held).toBe(true);
      expect(handle.fence).toBeGreaterThan((warm[i] as (typeof warm)[number]).fence);
    });
    for (const [i, name] of names.entries()) {
      expect(await link.direct.get(`${prefix}:lock:{${name}}`)).toBe(handles[i]?.token);
    }
    expect((await Promise.all(handles.map((handle) => handle.release()))).every(Boolean)).toBe(true);
    expect(rejections.list).toEqual([]);
  });

  it('semaphore acquisitions: permits held once per holder, never over the limit', async () => {
    const semaphore = new Semaphore({ redis: link.redis, prefix, limit: 3, ttl: '20s', timeout: 3_000, wait: 0 });
    const holders = `${prefix}:sem:{pool}`;
    await (await semaphore.acquire('pool')).release();
    await semaphore.tryAcquire('other').then((handle) => handle?.release());
    link.set({ kind: 'drop-replies' });
    const pending = Promise.all(Array.from({ length: 5 }, () => semaphore.tryAcquire('pool', { permits: 1 })));
    await waitUntil('the acquisitions to run in Redis', async () => (await link.direct.zcard(holders)) === 3);
    link.set({ kind: 'pass' });
    link.resetAll();
    const tries = await pending;
    const held = tries.filter((handle) => handle !== null);
    expect(held).toHaveLength(3);
    expect(await link.direct.zcard(holders)).toBe(3);
    expect(new Set(held.map((handle) => handle?.fence)).size).toBe(3);
    expect((await Promise.all(held.map((handle) => handle?.release()))).every(Boolean)).toBe(true);
    expect(await link.direct.exists(holders)).toBe(0);
    expect(rejections.list).toEqual([]);
  });
});
