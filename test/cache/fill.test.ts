import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { CachedLoaderError, scanEveryMaster } from '../../src/index.js';
import { waitUntil } from '../harness/index.js';
import { CACHE_TARGETS, type CacheTarget, cacheFactory, countingLoader, randomPrefix } from './support.js';

/** A loader that waits until the test releases it, to hold a load in flight on purpose. */
function heldLoader<T>(value: T) {
  let release!: () => void;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const loader = () => {
    markStarted();
    return new Promise<T>((resolve) => {
      release = () => resolve(value);
    });
  };
  return { loader, started, release: () => release() };
}

describe.each<CacheTarget>(CACHE_TARGETS)('Cache fills on %s', (target) => {
  const factory = cacheFactory(target);

  it('a delete racing an in-flight load keeps the loaded value out of the cache', async () => {
    const prefix = randomPrefix('del-race');
    const loading = await factory.make({ prefix });
    const other = await factory.make({ prefix }, true);
    const held = heldLoader('read before the delete');
    const load = loading.getOrSet('k', held.loader);
    await held.started;
    // Another instance updates the database and deletes the key while the load is running.
    expect(await other.delete('k')).toBe(0);
    held.release();
    expect(await load).toBe('read before the delete'); // the caller still gets what it loaded
    expect(await loading.get('k')).toBeUndefined(); // but it was not written back
    expect(await other.get('k')).toBeUndefined();
    expect(await other.getOrSet('k', () => 'fresh')).toBe('fresh');
  });

  it('a getOrSet that starts after a delete does not share a load that started before it', async () => {
    const cache = await factory.make();
    const held = heldLoader('loaded before the delete');
    const before = cache.getOrSet('k', held.loader);
    await held.started;
    await cache.delete('k');
    const after = cache.getOrSet('k', () => 'loaded after the delete');
    held.release();
    expect(await before).toBe('loaded before the delete');
    expect(await after).toBe('loaded after the delete');
    expect(await cache.get('k')).toBe('loaded after the delete');
  });

  it('a set racing an in-flight load is not overwritten by the older load', async () => {
    const prefix = randomPrefix('set-race');
    const loading = await factory.make({ prefix });
    const other = await factory.make({ prefix }, true);
    const held = heldLoader('old');
    const load = loading.getOrSet('k', held.loader);
    await held.started;
    expect(await other.set('k', 'new')).toBe(true);
    held.release();
    expect(await load).toBe('old');
    expect(await loading.get('k')).toBe('new');
  });

  it('a failed background refresh never replaces the stale value with a cached error', async () => {
    const cache = await factory.make({ ttl: 100, staleFor: '10s', errorTtl: '10s' });
    let fail = false;
    const loader = countingLoader('good', { fail: () => fail });
    expect(await cache.getOrSet('swr', loader)).toBe('good');
    await sleep(150);
    fail = true;
    expect(await cache.getOrSet('swr', loader)).toBe('good'); // stale, refresh starts and fails
    await waitUntil('the refresh to fail', async () => cache.stats().loadErrors === 1, 2_000);
    expect(await cache.getOrSet('swr', loader)).toBe('good');
    expect(await cache.get('swr')).toBeUndefined(); // stale is not fresh, but it is not an error either
    expect(cache.stats().staleServed).toBeGreaterThanOrEqual(2);
  });

  it('a failed early (XFetch) refresh never replaces the fresh value with a cached error', async () => {
    const cache = await factory.make({ ttl: '1m', errorTtl: '10s', earlyRefresh: { beta: 1e12 } });
    let fail = false;
    const loader = countingLoader('good', { delayMs: 5, fail: () => fail });
    expect(await cache.getOrSet('early', loader)).toBe('good');
    fail = true;
    expect(await cache.getOrSet('early', loader)).toBe('good'); // triggers the early refresh, which fails
    await waitUntil('the refresh to fail', async () => cache.stats().loadErrors === 1, 2_000);
    expect(await cache.getOrSet('early', loader)).toBe('good');
    expect(await cache.get('early')).toBe('good');
  });

  it('a loader that returns undefined fails with an error naming the key, for every waiter', async () => {
    const cache = await factory.make();
    const loader = countingLoader(undefined, { delayMs: 20 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getOrSet('user:nobody', loader)));
    expect(loader.calls).toBe(1);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason;
      expect(reason).toMatchObject({ code: 'ERR_INVALID_OPTION', option: 'loader' });
      expect(String(reason.message)).toContain('Cache.getOrSet("user:nobody")');
    }
    expect(await cache.get('user:nobody')).toBeUndefined();
    await expect(cache.getOrSet('user:nobody', loader)).rejects.toThrow(/returns|undefined/);
    expect(loader.calls).toBe(2); // not cached: the next call runs the loader again
  });

  it.each([
    ['returns undefined', () => undefined],
    [
      'throws',
      () => {
        throw new Error('database says no to "gone"');
      },
    ],
  ])(
    'a loader that %s is announced: waiting instances load at once, side by side, not one after another',
    async (_how, outcome) => {
      const prefix = randomPrefix('announce');
      const instances = await Promise.all([0, 1, 2, 3].map(() => factory.make({ prefix }, true)));
      const LOAD_MS = 400;
      const starts: number[] = [];
      const loader = async () => {
        starts.push(performance.now());
        await sleep(LOAD_MS);
        return outcome();
      };
      const [holder, ...waiters] = instances as [(typeof instances)[0], ...typeof instances];
      const first = holder.getOrSet('gone', loader);
      await waitUntil('the holder to start loading', async () => starts.length === 1, 2_000);
      const waiting = waiters.map((cache) => cache.getOrSet('gone', loader));
      const results = await Promise.allSettled([first, ...waiting]);
      for (const result of results) {
        expect(result.status).toBe('rejected');
        expect(String((result as PromiseRejectedResult).reason)).toContain('"gone"');
      }
      expect(starts).toHaveLength(4);
      // The three waiters learned of the failure together and loaded side by side.
      const waiterStarts = starts.slice(1);
      expect(Math.max(...waiterStarts) - Math.min(...waiterStarts)).toBeLessThan(LOAD_MS / 2);
      expect(Math.min(...waiterStarts) - (starts[0] as number)).toBeGreaterThanOrEqual(LOAD_MS - 20);
      expect(waiters.reduce((sum, cache) => sum + cache.stats().lockWaits, 0)).toBe(3);
    },
  );

  it('leaves no key without a ttl, whatever the calls (no immortal keys)', async () => {
    const prefix = randomPrefix('ttl');
    const cache = await factory.make({ prefix, errorTtl: '1m', staleFor: '1m' });
    const other = await factory.make({ prefix }, true);
    for (let i = 0; i < 50; i++) await cache.getOrSet(`miss:${i}`, () => i, { tags: [`tag:${i % 7}`] });
    await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => cache.getOrSet(`fail:${i}`, countingLoader(0, { fail: () => true }))),
    );
    await Promise.all([
      cache.getOrSet('shared', countingLoader('s', { delayMs: 50 })),
      other.getOrSet('shared', () => 's'),
    ]);
    await cache.set('set', 1, { tags: ['set-tag'] });
    await cache.delete(['miss:1', 'miss:2', 'never-existed']);
    await cache.invalidateTags(['tag:3', 'fresh-tag']);
    await cache.invalidatePattern('miss:4*');
    const held = heldLoader('x');
    const pending = cache.getOrSet('deleted-while-loading', held.loader);
    await held.started;
    await other.delete('deleted-while-loading');
    held.release();
    await pending;
    const immortal: string[] = [];
    let keys = 0;
    for await (const batch of scanEveryMaster(factory.redis, { match: `${prefix}:*` })) {
      for (const key of batch) {
        keys++;
        if ((await factory.redis.pttl(key)) === -1) immortal.push(key);
      }
    }
    expect(keys).toBeGreaterThan(50);
    expect(immortal).toEqual([]);
  });

  it('with errorTtl, instances waiting on a load that fails get its CachedLoaderError at once', async () => {
    const prefix = randomPrefix('neg-wait');
    const holder = await factory.make({ prefix, errorTtl: '5s' });
    const waiter = await factory.make({ prefix, errorTtl: '5s' }, true);
    const held = heldLoader<string>('unused');
    const failing = async () => {
      await held.loader();
      throw new Error('database down');
    };
    const first = holder.getOrSet('bad', failing);
    await held.started;
    const waiting = waiter.getOrSet('bad', countingLoader('should not run'));
    await sleep(100);
    held.release();
    await expect(first).rejects.toThrow('database down');
    await expect(waiting).rejects.toBeInstanceOf(CachedLoaderError);
    expect(waiter.stats()).toMatchObject({ lockWaits: 1, loads: 0 });
  });

  it('a cached loader error reaches other instances as CachedLoaderError', async () => {
    const prefix = randomPrefix('neg');
    const a = await factory.make({ prefix, errorTtl: '5s' });
    const b = await factory.make({ prefix, errorTtl: '5s' }, true);
    await expect(a.getOrSet('bad', countingLoader(0, { fail: () => true }))).rejects.toThrow('load failed');
    await expect(b.getOrSet('bad', () => 1)).rejects.toBeInstanceOf(CachedLoaderError);
  });
});
