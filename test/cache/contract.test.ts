import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CachedLoaderError, escapeGlob, InvalidOptionError } from '../../src/index.js';
import { waitUntil } from '../harness/index.js';
import {
  CACHE_TARGETS,
  type CacheTarget,
  cacheFactory,
  countCommands,
  countingLoader,
  randomPrefix,
} from './support.js';

describe.each<CacheTarget>(CACHE_TARGETS)('Cache on %s', (topology) => {
  const factory = cacheFactory(topology);

  it('gets, sets, checks and deletes, one command each', async () => {
    const cache = await factory.make();
    expect(await cache.get('missing')).toBeUndefined();
    expect(await cache.set('a', { id: 1, name: 'Ada' })).toBe(true);
    expect(await cache.set('nothing', null)).toBe(true);
    expect(await cache.get('a')).toEqual({ id: 1, name: 'Ada' });
    expect(await cache.get('nothing')).toBeNull();
    expect(await cache.has('nothing')).toBe(true);
    expect(await cache.has('missing')).toBe(false);
    expect((await countCommands(() => cache.get('a'))).names).toEqual(['get']);
    await cache.set('b', 2);
    expect(await cache.delete(['a', 'b', 'missing'])).toBe(2);
    expect(await cache.get('a')).toBeUndefined();
    expect(cache.stats()).toMatchObject({ l2Hits: 4, l1Hits: 0, deletedKeys: 2 });
  });

  it('a miss costs a GET, the fill lock and the fill (the announcement goes out in the background); a hit one GET', async () => {
    const cache = await factory.make();
    // Same hash slot as the key measured: its node's connection is up and its scripts loaded.
    await cache.getOrSet('{k}:warm-up', () => 1);
    const miss = await countCommands(() => cache.getOrSet('{k}:cold', () => ({ n: 1 })));
    expect(miss.names.filter((name) => !name.endsWith('publish'))).toEqual(['get', 'evalsha', 'evalsha']);
    await sleep(50); // the miss's announcement is on its way: not part of the hit
    const hit = await countCommands(() => cache.getOrSet('{k}:cold', () => ({ n: 2 })));
    expect(hit.names).toEqual(['get']);
  });

  it('expires entries after their ttl, per call or by default', async () => {
    const cache = await factory.make({ ttl: '1m' });
    await cache.set('short', 'x', { ttl: 100 });
    await cache.set('long', 'y');
    expect(await cache.get('short')).toBe('x');
    await sleep(150);
    expect(await cache.get('short')).toBeUndefined();
    expect(await cache.get('long')).toBe('y');
  });

  it('getOrSet loads once for 100 concurrent misses in one process and shares the value', async () => {
    const cache = await factory.make();
    const loader = countingLoader({ heavy: true }, { delayMs: 50 });
    const values = await Promise.all(Array.from({ length: 100 }, () => cache.getOrSet('k', loader)));
    expect(loader.calls).toBe(1);
    expect(values.every((value) => value === values[0])).toBe(true);
    expect(await cache.getOrSet('k', loader)).toEqual({ heavy: true });
    expect(loader.calls).toBe(1);
  });

  it('propagates a loader error to every waiter of that load, and does not cache it', async () => {
    const cache = await factory.make();
    const failing = countingLoader('x', { delayMs: 30, fail: () => true });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => cache.getOrSet('boom', failing)));
    expect(failing.calls).toBe(1);
    expect(results.every((result) => result.status === 'rejected' && /load failed/.test(String(result.reason)))).toBe(
      true,
    );
    const working = countingLoader('ok');
    expect(await cache.getOrSet('boom', working)).toBe('ok');
    expect(cache.stats()).toMatchObject({ loads: 2, loadErrors: 1 });
  });

  it('remembers a loader error for errorTtl when asked (negative caching)', async () => {
    const cache = await factory.make({ errorTtl: 200 });
    const failing = countingLoader('x', { fail: () => true });
    await expect(cache.getOrSet('neg', failing)).rejects.toThrow('load failed');
    await expect(cache.getOrSet('neg', failing)).rejects.toBeInstanceOf(CachedLoaderError);
    await expect(cache.getOrSet('neg', failing)).rejects.toThrow(/loading "neg" failed recently: load failed/);
    expect(failing.calls).toBe(1);
    await sleep(250);
    expect(await cache.getOrSet('neg', countingLoader('recovered'))).toBe('recovered');
  });

  it('serves a stale value at once while one background refresh runs, and keeps it if the refresh fails', async () => {
    const prefix = randomPrefix('swr');
    const cache = await factory.make({ prefix, ttl: 100, staleFor: '10s' });
    const stored = async () => (await factory.redis.get(`${prefix}:c:swr`)) ?? '';
    let version = 1;
    let failRefresh = false;
    // While set, a load is held until the test lets it go.
    let hold: Promise<void> | undefined;
    const loader = countingLoader(null, { delayMs: 50 });
    const load = async () => {
      await loader();
      await hold;
      if (failRefresh) throw new Error('database down');
      return `v${version}`;
    };
    expect(await cache.getOrSet('swr', load)).toBe('v1');
    version = 2;
    await sleep(150);
    // Stale: returned while the one refresh for ten callers is still loading (held until the
    // callers have their answer, so waiting for it would never end).
    let release = () => {};
    hold = new Promise((resolve) => {
      release = resolve;
    });
    const stale = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet('swr', load)));
    expect(stale).toEqual(Array(10).fill('v1'));
    expect(await stored()).not.toMatch(/"v2"$/);
    release();
    hold = undefined;
    await waitUntil('the refresh to be stored', async () => (await stored()).endsWith('"v2"'), 3_000);
    expect(loader.calls).toBe(2);
    expect(await cache.getOrSet('swr', load)).toBe('v2');
    // Stale-if-error: the refresh fails, the stale value keeps being served.
    failRefresh = true;
    await sleep(150);
    expect(await cache.getOrSet('swr', load)).toBe('v2');
    await waitUntil('the refresh to fail', async () => cache.stats().loadErrors >= 1, 3_000);
    expect(await cache.getOrSet('swr', load)).toBe('v2');
    expect(cache.stats().staleServed).toBeGreaterThanOrEqual(12);
  });

  it('treats an entry that fails its schema, or cannot be decoded, as a miss and deletes it', async () => {
    const prefix = `rs-test:schema-${topology}-${Math.random().toString(36).slice(2)}`;
    const cache = await factory.make({ prefix });
    const User = z.object({ id: z.number(), name: z.string() });
    await cache.set('u', { id: 'not a number', name: 'Ada' });
    expect(await cache.get('u', { schema: User })).toBeUndefined();
    await factory.redis.set(`${prefix}:c:foreign`, 'written by something else');
    expect(await cache.get('foreign')).toBeUndefined();
    await sleep(20);
    expect(await factory.redis.exists(`${prefix}:c:u`)).toBe(0);
    expect(await factory.redis.exists(`${prefix}:c:foreign`)).toBe(0);
    const loader = countingLoader({ id: 1, name: 'Ada' });
    const user = await cache.getOrSet('u', loader, { schema: User });
    expect(user.name).toBe('Ada');
    expect(loader.calls).toBe(1);
    expect(await cache.get('u', { schema: User })).toEqual({ id: 1, name: 'Ada' });
  });

  it('invalidates every entry of a tag, and only those', async () => {
    const cache = await factory.make();
    await cache.getOrSet('p1', () => 'one', { tags: ['product:1', 'catalog'] });
    await cache.getOrSet('p2', () => 'two', { tags: ['product:2', 'catalog'] });
    await cache.set('other', 'three', { tags: ['unrelated'] });
    await cache.invalidateTags(['product:1']);
    expect(await cache.get('p1')).toBeUndefined();
    expect(await cache.get('p2')).toBe('two');
    await cache.invalidateTags(['catalog']);
    expect(await cache.get('p2')).toBeUndefined();
    expect(await cache.get('other')).toBe('three');
    expect(cache.stats().invalidatedTags).toBe(2);
  });

  it('treats an evicted tag version as invalidated: doubt is a miss, never a stale hit', async () => {
    const prefix = `rs-test:evict-${topology}-${Math.random().toString(36).slice(2)}`;
    const cache = await factory.make({ prefix, bus: false });
    await cache.set('k', 'v', { tags: ['t'] });
    expect(await cache.get('k')).toBe('v');
    // As if Redis evicted redscale's bookkeeping key under memory pressure.
    await factory.redis.unlink(`${prefix}:ct:t`);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('a value loaded while its tag is invalidated is stored as already stale', async () => {
    const cache = await factory.make();
    let release!: () => void;
    const slowLoad = cache.getOrSet(
      'race',
      () => new Promise<string>((resolve) => (release = () => resolve('old data'))),
      {
        tags: ['race'],
      },
    );
    await sleep(50);
    await cache.invalidateTags(['race']);
    release();
    expect(await slowLoad).toBe('old data');
    expect(await cache.get('race')).toBeUndefined();
  });

  it('invalidates by pattern inside its prefix, and escapes user input', async () => {
    const cache = await factory.make();
    for (const key of ['user:1:profile', 'user:1:posts', 'user:2:profile', 'user:*:odd']) await cache.set(key, key);
    expect(await cache.invalidatePattern('user:1:*')).toBe(2);
    expect(await cache.get('user:1:profile')).toBeUndefined();
    expect(await cache.get('user:2:profile')).toBe('user:2:profile');
    expect(await cache.invalidatePattern(`user:${escapeGlob('*')}:*`)).toBe(1);
    expect(await cache.get('user:2:profile')).toBe('user:2:profile');
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
  });

  it.each([
    ['tenant[1]', 'tenant1'],
    ['app?', 'appX'],
    ['a*', 'ab'],
    ['back\\slash', 'backslash'],
  ])('a prefix with glob characters (%s) invalidates its own pattern only, never %s', async (globby, other) => {
    const base = `${randomPrefix('glob')}:`;
    const mine = await factory.make({ prefix: base + globby });
    const theirs = await factory.make({ prefix: base + other });
    await mine.set('x', 'mine');
    await theirs.set('x', 'theirs');
    await mine.getOrSet('y', () => 'mine too');
    expect(await mine.invalidatePattern('*')).toBe(2);
    expect(await mine.get('x')).toBeUndefined();
    expect(await mine.get('y')).toBeUndefined();
    expect(await theirs.get('x')).toBe('theirs');
  });

  it('rejects bad input with clear errors and stores nothing corrupt', async () => {
    const cache = await factory.make();
    await expect(cache.set('u', undefined)).rejects.toThrow(
      /"value" for Cache: received undefined; expected a value other than undefined/,
    );
    await expect(cache.set('big', 10n)).rejects.toMatchObject({ code: 'ERR_SERIALIZATION' });
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(cache.set('circular', circular)).rejects.toMatchObject({ code: 'ERR_SERIALIZATION' });
    expect(await cache.get('circular')).toBeUndefined();
    await expect(cache.set('k', 1, { ttl: '0' as never })).rejects.toThrow(/"ttl" for Cache.set\(\): received "0"/);
    await expect(cache.set('k', 1, { tags: [] })).rejects.toThrow(
      /"tags" for Cache.set\(\): received an empty array; expected at least 1 item/,
    );
    await expect(cache.invalidateTags([])).rejects.toThrow(InvalidOptionError);
    await expect(cache.invalidatePattern('')).rejects.toThrow(/"pattern"/);
    await expect(cache.get('')).rejects.toThrow(/"key" for Cache.get\(\)/);
    await expect(cache.getOrSet('k', 'no' as never)).rejects.toThrow(/"loader"/);
  });

  it('deletes many keys and invalidates many tags at once, across hash slots', async () => {
    const cache = await factory.make();
    const keys = Array.from({ length: 30 }, (_, i) => `many:${i}`);
    const tags = Array.from({ length: 30 }, (_, i) => `tag:${i}`);
    for (const [i, key] of keys.entries()) await cache.set(key, i, { tags: [tags[i] as string] });
    await cache.invalidateTags(tags.slice(0, 10));
    expect(await cache.get('many:0')).toBeUndefined();
    expect(await cache.get('many:10')).toBe(10);
    expect(await cache.delete(keys.slice(10))).toBe(20);
    for (const key of keys) expect(await cache.get(key)).toBeUndefined();
  });
});
