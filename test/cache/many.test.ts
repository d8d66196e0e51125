import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { groupBySlot, keyPrefixOf } from '../../src/client/cluster.js';
import { InvalidOptionError, isCluster } from '../../src/index.js';
import { countKeys } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import {
  CACHE_TARGETS,
  type CacheTarget,
  cacheFactory,
  countCommands,
  countingLoader,
  randomPrefix,
} from './support.js';

/** 30 keys in 3 hash slots (their `{tag}` decides the slot, whatever the prefixes). */
const KEYS = ['a', 'b', 'c'].flatMap((tag) => Array.from({ length: 10 }, (_, i) => `{${tag}}:${i}`));

describe.each<CacheTarget>(CACHE_TARGETS)('getMany, setMany and clear on %s', (target) => {
  const factory = cacheFactory(target);
  const slots = target.startsWith('cluster') ? 3 : 1;

  it('setMany stores many entries in one script per slot, getMany reads them in one MGET per slot', async () => {
    const cache = await factory.make();
    // Warm-up: every node's connection up and the scripts loaded there.
    await cache.setMany(KEYS.map((key) => ({ key, value: 0 })));
    const write = await countCommands(() => cache.setMany(KEYS.map((key, i) => ({ key, value: { i } }))));
    expect(write.names.filter((name) => !name.endsWith('publish'))).toEqual(Array(slots).fill('evalsha'));
    let values: unknown[] = [];
    const read = await countCommands(async () => {
      values = await cache.getMany([...KEYS, '{a}:missing', '{a}:0']);
    });
    expect(read.names).toEqual(Array(slots).fill('mget'));
    expect(values).toEqual([...KEYS.map((_, i) => ({ i })), undefined, { i: 0 }]);
    expect(await cache.getMany([])).toEqual([]);
    expect(cache.stats()).toMatchObject({ l2Hits: 31, misses: 1 });
  });

  it('getMany answers from L1 without I/O, and the rest from Redis', async () => {
    const cache = await factory.make({ l1: { maxEntries: 1_000 } });
    await cache.setMany(KEYS.slice(0, 20).map((key) => ({ key, value: key })));
    const inL1 = await countCommands(() => cache.getMany(KEYS.slice(0, 20)));
    expect(inL1.count).toBe(0);
    await cache.set('{c}:9', 'c9', { ttl: '1m' });
    await cache.delete(['{c}:9']); // gone from L1 too
    await sleep(20);
    const mixed = await countCommands(async () => {
      expect(await cache.getMany(['{a}:0', '{c}:9'])).toEqual(['{a}:0', undefined]);
    });
    expect(mixed.names).toEqual(['mget']);
    expect(cache.stats().l1Hits).toBe(21);
  });

  it('per-entry ttl and tags; tagged entries read their tag versions once for the whole batch', async () => {
    const prefix = randomPrefix('many-tags');
    const cache = await factory.make({ prefix, ttl: '1m', bus: false });
    expect(
      await cache.setMany([
        { key: '{a}:short', value: 1, ttl: 100 },
        { key: '{a}:long', value: 2 },
        { key: '{b}:t1', value: 3, tags: ['team:1', 'all'] },
        { key: '{c}:t2', value: 4, tags: ['team:2', 'all'] },
      ]),
    ).toBe(true);
    const read = await countCommands(async () => {
      expect(await cache.getMany(['{b}:t1', '{c}:t2'])).toEqual([3, 4]);
    });
    // Without a bus nothing is remembered: the MGETs, then one read of the three tags' versions
    // (one script per hash slot of the tags), not one per entry.
    const tagKeys = ['team:1', 'team:2', 'all'].map((tag) => `${prefix}:ct:${tag}`);
    const tagSlots = target.startsWith('cluster') ? groupBySlot(tagKeys, keyPrefixOf(factory.redis)).length : 1;
    expect(
      read.names.filter((name) => name === 'evalsha'),
      read.names.join(),
    ).toHaveLength(tagSlots);
    expect(read.names.filter((name) => name === 'mget')).toHaveLength(target.startsWith('cluster') ? 2 : 1);
    await sleep(200);
    expect(await cache.getMany(['{a}:short', '{a}:long'])).toEqual([undefined, 2]);
    await cache.invalidateTags(['team:1']);
    expect(await cache.getMany(['{b}:t1', '{c}:t2'])).toEqual([undefined, 4]);
    await cache.invalidateTags(['all']);
    expect(await cache.getMany(['{b}:t1', '{c}:t2'])).toEqual([undefined, undefined]);
  });

  it('getMany validates with a schema: an entry that fails is a miss and is deleted', async () => {
    const cache = await factory.make();
    await cache.setMany([
      { key: '{a}:good', value: { n: 1 } },
      { key: '{a}:bad', value: { n: 'one' } },
    ]);
    expect(await cache.getMany(['{a}:good', '{a}:bad'], { schema: z.object({ n: z.number() }) })).toEqual([
      { n: 1 },
      undefined,
    ]);
    await waitUntil('the bad entry to be deleted', async () => (await cache.get('{a}:bad')) === undefined);
  });

  it('setMany reaches other instances L1, and revokes a load in flight so it does not write back', async () => {
    const prefix = randomPrefix('many');
    const a = await factory.make({ prefix, l1: { maxEntries: 100 } });
    const b = await factory.make({ prefix, l1: { maxEntries: 100 } }, true);
    await a.setMany(KEYS.slice(0, 5).map((key) => ({ key, value: 'old' })));
    await waitUntil('B to keep them in L1', async () => {
      await b.getMany(KEYS.slice(0, 5));
      return b.stats().l1Hits >= 5;
    });
    const slow = countingLoader('loaded before the write', { delayMs: 300 });
    const loading = a.getOrSet('{b}:loading', slow);
    await sleep(100);
    expect(await a.setMany([...KEYS.slice(0, 5), '{b}:loading'].map((key) => ({ key, value: 'new' })))).toBe(true);
    await waitUntil('B to see the new values', async () =>
      (await b.getMany(KEYS.slice(0, 5))).every((value) => value === 'new'),
    );
    expect(await loading).toBe('loaded before the write');
    expect(await b.get('{b}:loading')).toBe('new');
  });

  it('setMany refuses bad entries before writing anything', async () => {
    const cache = await factory.make();
    const bad: unknown[] = [
      'nope',
      [null],
      [{ key: '', value: 1 }],
      [{ key: 'k', value: undefined }],
      [
        { key: 'k', value: 1 },
        { key: 'k', value: 2 },
      ],
      [{ key: 'k', value: 1, ttl: -1 }],
      [{ key: 'k', value: 1, tags: [] }],
      [{ key: 'k', value: 1, schema: 'x' }],
    ];
    for (const entries of bad) {
      await expect(cache.setMany(entries as never)).rejects.toBeInstanceOf(InvalidOptionError);
    }
    await expect(cache.setMany([{ key: 'k', value: new Date() }])).rejects.toMatchObject({
      code: 'ERR_SERIALIZATION',
    });
    expect(await cache.get('k')).toBeUndefined();
    await expect(cache.getMany('k' as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.getMany([''])).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it('clear() deletes the whole namespace on every master and every instance, and nothing else', async () => {
    const base = randomPrefix('clear');
    const prefix = `${base}[1]`;
    const a = await factory.make({ prefix, l1: { maxEntries: 1_000 } });
    const b = await factory.make({ prefix, l1: { maxEntries: 1_000 } }, true);
    const neighbour = await factory.make({ prefix: `${base}1` });
    const nested = await factory.make({ prefix: `${base}[1]x` });
    await a.setMany(KEYS.map((key) => ({ key, value: key, tags: [`t:${key}`] })));
    await neighbour.setMany(KEYS.map((key) => ({ key, value: 1 })));
    await nested.set('k', 1);
    await waitUntil('B to keep entries in L1', async () => {
      await b.getMany(KEYS);
      return b.stats().l1Hits >= KEYS.length;
    });
    expect(await countKeys(factory.redis, `${base}[[]1]:`)).toBe(KEYS.length * 2); // entries + tags
    expect(await a.clear()).toBe(KEYS.length);
    expect(await countKeys(factory.redis, `${base}[[]1]:`)).toBe(0);
    await waitUntil('B to drop its L1', async () => (await b.getMany(KEYS)).every((value) => value === undefined));
    expect(await neighbour.getMany(KEYS)).toEqual(Array(KEYS.length).fill(1));
    expect(await nested.get('k')).toBe(1);
    // And the cache works on as before.
    expect(await a.getOrSet('{a}:0', () => 'again', { tags: ['t:{a}:0'] })).toBe('again');
    expect(await b.get('{a}:0')).toBe('again');
    expect(isCluster(factory.redis)).toBe(target.startsWith('cluster'));
  });
});
