import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { binarySerializer, type RedisLike } from '../../src/index.js';
import { unhandledRejections } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { cacheFactory, countingLoader, randomPrefix } from './support.js';

const rejections = unhandledRejections();

/** A binary format of its own: bytes that are not valid UTF-8 (0xff, 0x00, 0xfe), then JSON. */
const MAGIC = Buffer.from([0xff, 0x00, 0xfe]);
const bytes = binarySerializer({
  serialize: (value) => Buffer.concat([MAGIC, Buffer.from(JSON.stringify(value))]),
  deserialize: (data) => {
    if (!Buffer.isBuffer(data) || !data.subarray(0, 3).equals(MAGIC)) throw new TypeError('not this format');
    return JSON.parse(data.subarray(3).toString('utf8'));
  },
});
/** The same, as a plain Uint8Array (not a Buffer). */
const uint8 = binarySerializer({
  serialize: (value) => new Uint8Array(Buffer.concat([MAGIC, Buffer.from(JSON.stringify(value))])),
  deserialize: (data) => JSON.parse(data.subarray(3).toString('utf8')),
});

const big = { rows: Array.from({ length: 500 }, (_, i) => ({ id: i, name: `row number ${i}`, tags: ['a', 'b'] })) };

describe.each(['standalone', 'cluster+keyPrefix'] as const)('binary values and compression on %s', (target) => {
  const factory = cacheFactory(target);
  const raw = (redis: RedisLike, prefix: string, key: string) => redis.getBuffer(`${prefix}:c:${key}`);

  it('a binary serializer round-trips bytes that are not UTF-8, through every path, and records the format', async () => {
    const prefix = randomPrefix('binary');
    const a = await factory.make({ prefix, serializer: bytes, l1: { maxEntries: 100 } });
    const b = await factory.make({ prefix, serializer: uint8, l1: { maxEntries: 100 } }, true);
    expect(await a.set('k', { é: 'ü', n: 1 })).toBe(true);
    const stored = (await raw(factory.redis, prefix, 'k')) as Buffer;
    expect(stored.subarray(0, 2).toString()).toBe('B|');
    expect(stored.includes(MAGIC)).toBe(true);
    expect(await b.get('k')).toEqual({ é: 'ü', n: 1 });
    expect(await a.getOrSet('loaded', () => [1, 2, 3])).toEqual([1, 2, 3]);
    expect(await b.getOrSet('loaded', () => ['not', 'run'])).toEqual([1, 2, 3]);
    await b.setMany([
      { key: '{x}:1', value: 'one' },
      { key: '{x}:2', value: 'two' },
    ]);
    expect(await a.getMany(['{x}:1', '{x}:2', 'k'])).toEqual(['one', 'two', { é: 'ü', n: 1 }]);
    // A stampede across both instances on a binary entry: one load (the waiter reads the bytes).
    const loader = countingLoader({ shared: true }, { delayMs: 100 });
    const both = await Promise.all([a.getOrSet('stampede', loader), b.getOrSet('stampede', loader)]);
    expect(both).toEqual([{ shared: true }, { shared: true }]);
    expect(loader.calls).toBe(1);
  });

  it('compresses payloads above the threshold, and caches without compression read them', async () => {
    const prefix = randomPrefix('deflate');
    const writer = await factory.make({ prefix, compression: { threshold: 200 } });
    const reader = await factory.make({ prefix }, true);
    const binaryWriter = await factory.make({ prefix, serializer: bytes, compression: true });
    const binaryReader = await factory.make({ prefix, serializer: bytes }, true);
    await writer.set('big', big);
    await writer.set('small', { n: 1 });
    await binaryWriter.set('big-bytes', big);
    const json = Buffer.byteLength(JSON.stringify(big));
    const bigStored = (await raw(factory.redis, prefix, 'big')) as Buffer;
    expect(bigStored.subarray(0, 2).toString()).toBe('Z|');
    expect(bigStored.length).toBeLessThan(json / 3);
    expect(((await raw(factory.redis, prefix, 'small')) as Buffer).subarray(0, 2).toString()).toBe('1|');
    expect(((await raw(factory.redis, prefix, 'big-bytes')) as Buffer).subarray(0, 2).toString()).toBe('X|');
    expect(await reader.get('big')).toEqual(big);
    expect(await reader.get('small')).toEqual({ n: 1 });
    expect(await binaryReader.get('big-bytes')).toEqual(big);
    expect(await writer.getOrSet('loaded-big', () => big)).toEqual(big);
    expect(await reader.getMany(['loaded-big'])).toEqual([big]);
  });

  it('a reader whose serializer does not match the recorded format refuses the entry cleanly', async () => {
    const prefix = randomPrefix('mismatch');
    const binaryCache = await factory.make({ prefix, serializer: bytes });
    const textCache = await factory.make({ prefix }, true);
    await binaryCache.set('b', { from: 'binary' });
    expect(await textCache.get('b')).toBeUndefined(); // JSON never parses the bytes
    expect(await textCache.getOrSet('b', () => ({ from: 'text' }))).toEqual({ from: 'text' });
    expect(await binaryCache.get('b')).toBeUndefined(); // and the binary one never reads text
    expect(rejections.list).toEqual([]);
  });

  it('hostile entries: corrupt deflate, a zip bomb, a truncated header are misses and deleted; a newer format is kept', async () => {
    const prefix = randomPrefix('hostile-bytes');
    const cache = await factory.make({ prefix, compression: true });
    const header = (kind: string) => `${kind}|${Date.now() + 60_000}|${Date.now() + 60_000}|0||`;
    const bomb = deflateRawSync(Buffer.alloc(80 * 1024 * 1024, 0x20)); // 80 MiB of spaces, ~80 KB deflated
    const hostile: Array<[string, Buffer]> = [
      ['corrupt', Buffer.concat([Buffer.from(header('Z')), Buffer.from([1, 2, 3, 4, 5])])],
      ['bomb', Buffer.concat([Buffer.from(header('Z')), bomb])],
      ['bomb-bytes', Buffer.concat([Buffer.from(header('X')), bomb])],
      ['truncated', Buffer.from('Z|1|2')],
    ];
    for (const [key, value] of hostile) await factory.redis.set(`${prefix}:c:${key}`, value, 'PX', 60_000);
    for (const [key] of hostile) expect(await cache.get(key)).toBeUndefined();
    await waitUntil('the hostile entries to be deleted', async () => {
      const left = await Promise.all(hostile.map(([key]) => raw(factory.redis, prefix, key)));
      return left.every((value) => value === null);
    });
    // A format from a newer redscale: not read, not deleted (its readers may be running), replaced on a load.
    const newer = `${header('Q')}future payload`;
    await factory.redis.set(`${prefix}:c:newer`, newer, 'PX', 60_000);
    expect(await cache.get('newer')).toBeUndefined();
    expect(((await raw(factory.redis, prefix, 'newer')) as Buffer).toString()).toBe(newer);
    expect(await cache.getOrSet('newer', () => 'now')).toBe('now');
    expect(await cache.get('newer')).toBe('now');
    expect(rejections.list).toEqual([]);
  });

  it('refuses what a serializer returns that is neither text nor bytes, and bad compression options', async () => {
    const cache = await factory.make({
      serializer: binarySerializer({ serialize: () => 42 as never, deserialize: () => 42 }),
    });
    await expect(cache.set('k', 1)).rejects.toMatchObject({ code: 'ERR_SERIALIZATION' });
    // Bytes from a serializer not declared binary, and text from one that is: refused, with the fix.
    const undeclared = await factory.make({
      serializer: { serialize: () => Buffer.from('x') as never, deserialize: () => 1 },
    });
    await expect(undeclared.set('k', 1)).rejects.toThrow(/binarySerializer/);
    const lying = await factory.make({
      serializer: binarySerializer({ serialize: () => 'text' as never, deserialize: () => 1 }),
    });
    await expect(lying.set('k', 1)).rejects.toThrow(/returned a string/);
    await expect(factory.make({ compression: { threshold: -1 } })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    await expect(factory.make({ compression: { level: 12 } })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});
