import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { waitUntil } from '../harness/index.js';
import {
  CACHE_TARGETS,
  type CacheTarget,
  cacheFactory,
  countCommands,
  countingLoader,
  randomPrefix,
} from './support.js';

describe.each<CacheTarget>(CACHE_TARGETS)('L1 and the invalidation bus on %s', (topology) => {
  const factory = cacheFactory(topology);

  it('an L1 hit does no I/O at all', async () => {
    const cache = await factory.make({ l1: { maxEntries: 100 } });
    await cache.set('k', { n: 1 });
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);
    const loader = countingLoader('v');
    await cache.getOrSet('g', loader);
    expect((await countCommands(() => cache.getOrSet('g', loader))).count).toBe(0);
    expect(cache.stats().l1Hits).toBe(2);
  });

  it('writes, deletes and tag invalidations on one instance reach the L1 of another', async () => {
    const prefix = randomPrefix('l1');
    const a = await factory.make({ prefix, l1: { maxEntries: 100 } }, true);
    const b = await factory.make({ prefix, l1: { maxEntries: 100 } }, true);
    await a.set('k', 'v1', { tags: ['t'] });
    // a's write announcement may still be on its way to b: a read racing it does not fill L1.
    await sleep(20);
    expect(await b.get('k')).toBe('v1');
    expect((await countCommands(() => b.get('k'))).count).toBe(0); // now in b's L1

    await a.set('k', 'v2', { tags: ['t'] });
    await waitUntil('b to see v2', async () => (await b.get('k')) === 'v2', 2_000);

    await a.invalidateTags(['t']);
    await waitUntil('b to see the tag invalidated', async () => (await b.get('k')) === undefined, 2_000);

    await a.set('k', 'v3');
    expect(await b.get('k')).toBe('v3');
    await a.delete('k');
    await waitUntil('b to see the delete', async () => (await b.get('k')) === undefined, 2_000);

    await a.set('p:1', 1);
    await a.set('q:1', 1);
    expect(await b.get('p:1')).toBe(1);
    expect(await b.get('q:1')).toBe(1);
    await a.invalidatePattern('p:*');
    await waitUntil('b to drop p:1', async () => (await b.get('p:1')) === undefined, 2_000);
    expect((await countCommands(() => b.get('q:1'))).count).toBe(0);
  });

  it('a tag on 10,000 keys is invalidated with the same commands as a tag on 10', async () => {
    const cache = await factory.make({ bus: false });
    const few = Array.from({ length: 10 }, (_, i) => cache.set(`few:${i}`, i, { tags: ['few'] }));
    await Promise.all(few);
    for (let batch = 0; batch < 10_000; batch += 1_000) {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => cache.set(`many:${batch + i}`, i, { tags: ['many'] })));
    }
    const small = await countCommands(() => cache.invalidateTags(['few']));
    const large = await countCommands(() => cache.invalidateTags(['many']));
    expect(large).toEqual(small);
    expect(large.count).toBe(1);
    expect(await cache.get('many:9999')).toBeUndefined();
    expect(await cache.get('few:3')).toBeUndefined();
  }, 60_000);

  it('without the bus there is no L1, and tag versions are read from Redis', async () => {
    const cache = await factory.make({ l1: { maxEntries: 100 }, bus: false });
    await cache.set('k', 1, { tags: ['t'] });
    expect((await countCommands(() => cache.get('k'))).count).toBe(2);
    await sleep(1);
    expect(cache.stats().l1Hits).toBe(0);
  });
});
