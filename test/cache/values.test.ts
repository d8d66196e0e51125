import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { jsonSerializer, RedscaleError, type Serializer } from '../../src/index.js';
import { cacheFactory, countCommands, randomPrefix } from './support.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

describe('the default JSON serializer', () => {
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const withSymbolKey = { [Symbol('s')]: 1 };
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;

  it.each([
    ['a Date', { at: new Date() }, '$.at', /Date/],
    ['a Map', { index: new Map([[1, 2]]) }, '$.index', /Map/],
    ['a Set', { ids: new Set([1]) }, '$.ids', /Set/],
    ['a BigInt', { n: 10n }, '$.n', /BigInt/],
    ['a class instance', [new Point(1, 2)], '$[0]', /Point/],
    ['NaN', { deep: { list: [1, Number.NaN] } }, '$.deep.list[1]', /NaN/],
    ['Infinity', { x: Number.POSITIVE_INFINITY }, '$.x', /Infinity/],
    ['undefined inside an object', { name: 'a', email: undefined }, '$.email', /undefined/],
    ['undefined inside an array', [1, undefined], '$[1]', /undefined/],
    ['an array hole', sparse, '$[1]', /hole/],
    ['a function', { f: () => 1 }, '$.f', /function/],
    ['a symbol', { s: Symbol('x') }, '$.s', /symbol/],
    ['symbol keys', withSymbolKey, '$', /symbol keys/],
    ['a circular reference', circular, '$.self', /circular/],
    ['an odd key', { 'a b': { c: new Date() } }, '$["a b"].c', /Date/],
    ['undefined at the top', undefined, '$', /undefined/],
  ])('refuses %s with ERR_SERIALIZATION naming the path', (_what, value, path, message) => {
    let error: unknown;
    try {
      jsonSerializer.serialize(value);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RedscaleError);
    expect(error).toMatchObject({ code: 'ERR_SERIALIZATION', context: { path } });
    expect(String((error as Error).message)).toMatch(message);
    expect(String((error as Error).message)).toContain(`at ${path}`);
  });

  it('round-trips plain data exactly', () => {
    const value = { s: 'é', n: -1.5, b: true, z: null, list: [1, 'two', { three: [3] }], empty: {}, none: [] };
    expect(jsonSerializer.deserialize(jsonSerializer.serialize(value))).toEqual(value);
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    expect(jsonSerializer.deserialize(jsonSerializer.serialize(bare))).toEqual({ a: 1 });
  });
});

describe('one key, one value', () => {
  const factory = cacheFactory('standalone');
  /** JSON without the strict checks: lossy for a Date, as a user's own serializer might be. */
  const lossy: Serializer = { serialize: (value) => JSON.stringify(value), deserialize: (text) => JSON.parse(text) };

  it('a value JSON cannot give back is refused by set and getOrSet, with the path', async () => {
    const cache = await factory.make();
    await expect(cache.set('k', { user: { created: new Date() } })).rejects.toMatchObject({
      code: 'ERR_SERIALIZATION',
      context: { key: 'k', path: '$.user.created' },
    });
    await expect(cache.getOrSet('g', () => ({ ids: new Set([1]) }))).rejects.toMatchObject({
      code: 'ERR_SERIALIZATION',
      context: { key: 'g', path: '$.ids' },
    });
    expect(await cache.get('k')).toBeUndefined();
    // Nothing was stored, and the fill lock was released: the next caller loads at once.
    expect(await cache.getOrSet('g', () => ({ ids: [1] }))).toEqual({ ids: [1] });
  });

  it('L1 holds what every other instance reads: the serializer’s round trip, not the loader’s object', async () => {
    const prefix = randomPrefix('one-value');
    const withL1 = await factory.make({ prefix, serializer: lossy, l1: { maxEntries: 100 } });
    const other = await factory.make({ prefix, serializer: lossy }, true);
    const at = new Date('2030-01-02T03:04:05.000Z');
    await withL1.set('set', { at });
    const loaded = { at, nested: { n: 1 } };
    const returned = await withL1.getOrSet('loaded', () => loaded);
    // The caller of getOrSet gets what every instance will read, not the loader's own object.
    expect(returned).toEqual({ at: '2030-01-02T03:04:05.000Z', nested: { n: 1 } });
    expect(returned).not.toBe(loaded);
    loaded.nested.n = 2; // mutating the loader's object cannot change the cache
    for (const key of ['set', 'loaded']) {
      const local = await withL1.get(key);
      expect(local).toEqual(await other.get(key));
      expect((local as { at: unknown }).at).toBe('2030-01-02T03:04:05.000Z');
    }
    expect((await withL1.get<undefined, { nested: { n: number } }>('loaded'))?.nested.n).toBe(1);
    // Those reads came from L1: no command at all.
    expect((await countCommands(() => withL1.get('set'))).count).toBe(0);
  });

  it('with a schema, an L1 hit returns the schema’s output, and a hit without one the value as stored', async () => {
    const cache = await factory.make({ l1: { maxEntries: 100 } });
    const Event = z.object({ at: z.coerce.date() });
    const first = await cache.getOrSet('e', () => ({ at: '2030-01-02T03:04:05.000Z' }), { schema: Event });
    expect(first.at).toBeInstanceOf(Date);
    const hit = await cache.getOrSet('e', () => ({ at: 'never' }), { schema: Event });
    expect(hit.at).toBeInstanceOf(Date);
    expect(await cache.get('e')).toEqual({ at: '2030-01-02T03:04:05.000Z' });
    expect(cache.stats().l1Hits).toBe(2);
  });
});
