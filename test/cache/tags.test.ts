import { describe, expect, it } from 'vitest';
import { type Topology } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { cacheFactory, countCommands, randomPrefix } from './support.js';

describe.each<Topology>(['standalone', 'cluster'])('remembered tag versions on %s', (topology) => {
  const factory = cacheFactory(topology);

  it('stay bounded however many tags are used', async () => {
    // No heartbeat here: on a loaded machine a late one flushes what is remembered (as it should).
    const cache = await factory.make({ maxRememberedTags: 200, bus: { heartbeat: '1h' } });
    for (let batch = 0; batch < 5_000; batch += 500) {
      await Promise.all(
        Array.from({ length: 500 }, (_, i) => cache.set(`k:${batch + i}`, i, { tags: [`tag:${batch + i}`] })),
      );
    }
    await Promise.all(Array.from({ length: 500 }, (_, i) => cache.get(`k:${4_500 + i}`)));
    expect(cache.stats().rememberedTags).toBeGreaterThan(0);
    expect(cache.stats().rememberedTags).toBeLessThanOrEqual(200);
  }, 60_000);

  it('a forgotten tag is read again: doubt is a round trip, never a stale hit', async () => {
    const prefix = randomPrefix('forget');
    const cache = await factory.make({ prefix, maxRememberedTags: 10, l1: { maxEntries: 1_000 } });
    const other = await factory.make({ prefix }, true);
    await cache.set('k', 'v1', { tags: ['watched'] });
    expect((await countCommands(() => cache.get('k'))).count).toBe(0); // L1, tag version remembered
    // Twenty other tags push "watched" out of the ten remembered.
    for (let i = 0; i < 20; i++) await cache.set(`other:${i}`, i, { tags: [`other:${i}`] });
    const reread = await countCommands(() => cache.get('k'));
    expect(reread.names).toEqual(['get', 'evalsha']); // the entry, then the forgotten tag's version
    await other.invalidateTags(['watched']);
    await waitUntil('the invalidation to arrive', async () => (await cache.get('k')) === undefined, 2_000);
  });
});
