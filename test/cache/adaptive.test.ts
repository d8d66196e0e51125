import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, type LoadContext, LoaderTimeoutError } from '../../src/index.js';
import { unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { cacheFactory, countingLoader, randomPrefix } from './support.js';

const rejections = unhandledRejections();

describe.each(['standalone', 'cluster+keyPrefix'] as const)('adaptive entries and loader timeouts on %s', (target) => {
  const factory = cacheFactory(target);

  it('a loader sets its entry ttl from the value it loaded', async () => {
    const cache = await factory.make({ ttl: '1m' });
    const load = (value: string | null) => (ctx: LoadContext) => {
      if (value === null) ctx.setOptions({ ttl: 100 });
      return value;
    };
    expect(await cache.getOrSet('found', load('ada'))).toBe('ada');
    expect(await cache.getOrSet('not-found', load(null))).toBeNull();
    expect(await cache.get('not-found')).toBeNull();
    await sleep(250);
    expect(await cache.get('not-found')).toBeUndefined();
    expect(await cache.get('found')).toBe('ada');
  });

  it('a loader sets staleFor: the entry is then served stale while it refreshes', async () => {
    const cache = await factory.make({ ttl: '1m' });
    let version = 0;
    const loader = (ctx: LoadContext) => {
      ctx.setOptions({ ttl: 100, staleFor: '1m' });
      return ++version;
    };
    expect(await cache.getOrSet('k', loader)).toBe(1);
    await sleep(200);
    expect(await cache.getOrSet('k', loader)).toBe(1); // stale, at once
    // (Each stale hit starts a refresh if none runs: one that failed on a loaded machine is retried.)
    await waitUntil('the refresh to land', async () => (await cache.getOrSet('k', loader)) >= 2);
  });

  it('skip() returns the value to every caller of the load and stores nothing', async () => {
    const cache = await factory.make();
    const loader = countingLoader('draft', { delayMs: 50 });
    const skipping = async (ctx: LoadContext) => {
      ctx.skip();
      expect(ctx.skipped).toBe(true);
      return loader();
    };
    const values = await Promise.all(Array.from({ length: 20 }, () => cache.getOrSet('k', skipping)));
    expect(values.every((value) => value === 'draft')).toBe(true);
    expect(loader.calls).toBe(1);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.getOrSet('k', skipping)).toBe('draft');
    expect(loader.calls).toBe(2);
  });

  it('tags set by the loader invalidate the entry on every instance, L1 included', async () => {
    const prefix = randomPrefix('adaptive-tags');
    const a = await factory.make({ prefix, l1: { maxEntries: 100 } });
    const b = await factory.make({ prefix, l1: { maxEntries: 100 } }, true);
    const loader = (ctx: LoadContext) => {
      expect(ctx.key).toBe('user:1');
      expect(ctx.options.tags).toEqual(['user:1']);
      ctx.setOptions({ tags: ['user:1', 'org:7'] });
      expect(ctx.options.tags).toEqual(['user:1', 'org:7']);
      return { id: 1, org: 7 };
    };
    expect(await a.getOrSet('user:1', loader, { tags: ['user:1'] })).toEqual({ id: 1, org: 7 });
    // (A's announcement of its write may land after B's first read, which then keeps nothing.)
    await waitUntil('B to serve it from L1', async () => {
      expect(await b.get('user:1')).toEqual({ id: 1, org: 7 });
      return b.stats().l1Hits > 0;
    });
    await a.invalidateTags(['org:7']);
    expect(await a.get('user:1')).toBeUndefined();
    await waitUntil('B to hear of the invalidation', async () => (await b.get('user:1')) === undefined);
  });

  it('a value whose new tag was invalidated while it loaded is returned but not stored', async () => {
    const prefix = randomPrefix('adaptive-race');
    const a = await factory.make({ prefix });
    const b = await factory.make({ prefix }, true);
    await a.invalidateTags(['org:7']); // the tag exists before the loads below
    await sleep(1_200); // well before them, even on a clock this process has not learned yet
    const racing = async (ctx: LoadContext) => {
      ctx.setOptions({ tags: ['org:7'] });
      await b.invalidateTags(['org:7']); // another instance, while this value is loading
      return 'old';
    };
    expect(await a.getOrSet('raced', racing)).toBe('old');
    expect(await a.get('raced')).toBeUndefined();
    expect(await b.get('raced')).toBeUndefined();
    await sleep(1_200);
    const calm = (ctx: LoadContext) => {
      ctx.setOptions({ tags: ['org:7'] });
      return 'new';
    };
    expect(await a.getOrSet('calm', calm)).toBe('new');
    expect(await b.get('calm')).toBe('new');
    await b.invalidateTags(['org:7']);
    expect(await a.get('calm')).toBeUndefined();
  });

  it('a bad setOptions fails the load with InvalidOptionError, and nothing is stored', async () => {
    const cache = await factory.make();
    const bad = [{ ttl: -1 }, { tags: [] }, { tags: [''] }, { ttl: '5 parsecs' }, { other: 1 }];
    for (const options of bad) {
      const error = await cache
        .getOrSet('k', (ctx) => {
          ctx.setOptions(options as never);
          return 1;
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect(String(error)).toMatch(/LoadContext\.setOptions\(\)/);
    }
    expect(await cache.get('k')).toBeUndefined();
  });

  it('softTimeout: a stale hit waits that long for the refresh, then gets the stale value; the refresh lands', async () => {
    const cache = await factory.make({ ttl: 50, staleFor: '1m', softTimeout: 100 });
    await cache.set('slow', 'old');
    await cache.set('fast', 'old');
    await sleep(150);
    const slow = countingLoader('new', { delayMs: 800 });
    expect(await cache.getOrSet('slow', slow)).toBe('old');
    expect(slow.calls).toBe(1);
    await waitUntil('the slow refresh to land', async () => (await cache.getOrSet('slow', slow)) === 'new');
    // A refresh that makes it within the soft timeout is what the caller gets.
    const fast = countingLoader('new');
    const staleBefore = cache.stats().staleServed;
    expect(await cache.getOrSet('fast', fast, { softTimeout: '5s' })).toBe('new');
    expect(cache.stats().staleServed).toBe(staleBefore);
    expect(fast.calls).toBe(1);
  });

  it('hardTimeout: the caller fails with LoaderTimeoutError, the load goes on and is stored', async () => {
    const cache = await factory.make();
    const slow = countingLoader('value', { delayMs: 600 });
    const error = await cache.getOrSet('k', slow, { hardTimeout: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoaderTimeoutError);
    expect(error).toMatchObject({ code: 'ERR_LOADER_TIMEOUT', context: { key: 'k', timeoutMs: 100 } });
    expect(cache.stats().hardTimeouts).toBe(1);
    await waitUntil('the load to be stored', async () => (await cache.get('k')) === 'value');
    expect(slow.calls).toBe(1);
    // A load that fails after the caller gave up is nobody's: no unhandled rejection.
    const failing = countingLoader('x', { delayMs: 200, fail: () => true });
    await expect(cache.getOrSet('f', failing, { hardTimeout: 50 })).rejects.toBeInstanceOf(LoaderTimeoutError);
    await sleep(300);
    expect(rejections.list).toEqual([]);
  });

  it("hardTimeout also bounds the wait for another instance's load", async () => {
    const prefix = randomPrefix('hard-wait');
    const a = await factory.make({ prefix, hardTimeout: '10s' });
    const b = await factory.make({ prefix, hardTimeout: 150 }, true);
    const slow = countingLoader('a', { delayMs: 800 });
    const own = countingLoader('b');
    const first = a.getOrSet('k', slow);
    await sleep(100);
    await expect(b.getOrSet('k', own)).rejects.toMatchObject({ code: 'ERR_LOADER_TIMEOUT' });
    expect(await first).toBe('a');
    expect(own.calls).toBe(0);
    expect(await b.getOrSet('k', own)).toBe('a');
  });

  it('forceFresh loads anew over a fresh value, stores it for every instance, and 10 such calls load once', async () => {
    const prefix = randomPrefix('force');
    const a = await factory.make({ prefix, l1: { maxEntries: 100 } });
    const b = await factory.make({ prefix, l1: { maxEntries: 100 } }, true);
    await a.set('k', 1);
    expect(await b.get('k')).toBe(1);
    expect(await a.getOrSet('k', () => 2)).toBe(1);
    expect(await a.getOrSet('k', () => 2, { forceFresh: true })).toBe(2);
    expect(await a.get('k')).toBe(2);
    await waitUntil('B to read the new value', async () => (await b.get('k')) === 2);
    const loader = countingLoader(3, { delayMs: 100 });
    const values = await Promise.all(Array.from({ length: 10 }, () => a.getOrSet('k', loader, { forceFresh: true })));
    expect(values).toEqual(Array(10).fill(3));
    expect(loader.calls).toBe(1);
  });

  it('validates the timeouts and refuses them where they do not apply', async () => {
    const cache = await factory.make();
    await expect(cache.getOrSet('k', () => 1, { hardTimeout: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.getOrSet('k', () => 1, { softTimeout: 'soon' as never })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(cache.getOrSet('k', () => 1, { forceFresh: 'yes' as never })).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(cache.set('k', 1, { forceFresh: true } as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(factory.make({ hardTimeout: -5 })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
