import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, type LoadContext } from '../../src/index.js';
import { cacheFactory, randomPrefix } from './support.js';

describe.each(['standalone', 'cluster'] as const)('warm and prefetch on %s', (target) => {
  const factory = cacheFactory(target);

  /** A loader for many keys that counts its runs and how many run at once. */
  function trackedLoader(delayMs = 20) {
    const state = { calls: 0, running: 0, maxRunning: 0, keys: [] as string[] };
    const load = async (key: string) => {
      state.calls++;
      state.keys.push(key);
      state.running++;
      state.maxRunning = Math.max(state.maxRunning, state.running);
      await sleep(delayMs);
      state.running--;
      return `value of ${key}`;
    };
    return { state, load };
  }

  it('warm loads every entry with at most `concurrency` loaders at once', async () => {
    const cache = await factory.make();
    const { state, load } = trackedLoader();
    const keys = Array.from({ length: 40 }, (_, i) => `user:${i}`);
    const report = await cache.warm(
      keys.map((key) => ({ key, loader: () => load(key), ttl: '1m' })),
      { concurrency: 4 },
    );
    expect(report).toEqual({ done: 40, failed: [], skipped: 0 });
    expect(state.calls).toBe(40);
    expect(state.maxRunning).toBe(4);
    expect(await cache.getMany(keys)).toEqual(keys.map((key) => `value of ${key}`));
  });

  it('three instances warming the same keys at once load each key once between them', async () => {
    const prefix = randomPrefix('warm');
    const instances = await Promise.all([1, 2, 3].map(() => factory.make({ prefix }, true)));
    const { state, load } = trackedLoader(30);
    const keys = Array.from({ length: 30 }, (_, i) => `item:${i}`);
    const reports = await Promise.all(instances.map((cache) => cache.prefetch(keys, load, { concurrency: 10 })));
    expect(reports.map((report) => report.done)).toEqual([30, 30, 30]);
    expect(state.calls).toBe(30);
    expect(new Set(state.keys).size).toBe(30);
  });

  it('prefetch loads only what is not fresh, and passes the context on', async () => {
    const cache = await factory.make();
    await cache.set('p:1', 'already');
    const { state, load } = trackedLoader(1);
    const adaptive = (key: string, ctx: LoadContext) => {
      if (key === 'p:3') ctx.skip();
      return load(key);
    };
    const report = await cache.prefetch(['p:1', 'p:2', 'p:3'], adaptive);
    expect(report.done).toBe(3);
    expect(state.keys.sort()).toEqual(['p:2', 'p:3']);
    expect(await cache.getMany(['p:1', 'p:2', 'p:3'])).toEqual(['already', 'value of p:2', undefined]);
  });

  it('a key that fails is reported, never thrown, and the others warm', async () => {
    const cache = await factory.make();
    const report = await cache.warm([
      { key: 'ok', loader: () => 1 },
      {
        key: 'throws',
        loader: () => {
          throw new Error('db down');
        },
      },
      { key: 'undefined', loader: () => undefined },
      { key: 'bad-ttl', loader: () => 1, ttl: -1 },
      { key: 'slow', loader: () => sleep(500).then(() => 1), hardTimeout: 50 },
    ]);
    expect(report.done).toBe(1);
    expect(report.failed.map(({ key }) => key).sort()).toEqual(['bad-ttl', 'slow', 'throws', 'undefined']);
    expect(report.failed.find(({ key }) => key === 'slow')?.error).toMatchObject({ code: 'ERR_LOADER_TIMEOUT' });
    expect(await cache.get('ok')).toBe(1);
  });

  it('stops starting keys once the signal aborts, and refuses bad input', async () => {
    const cache = await factory.make();
    const controller = new AbortController();
    const { state, load } = trackedLoader(30);
    const keys = Array.from({ length: 20 }, (_, i) => `s:${i}`);
    const warming = cache.prefetch(keys, load, { concurrency: 2, signal: controller.signal });
    await sleep(45);
    controller.abort();
    const report = await warming;
    expect(report.done + report.skipped).toBe(20);
    expect(report.skipped).toBeGreaterThan(0);
    expect(state.calls).toBe(report.done);
    await expect(cache.warm('x' as never)).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.warm([{ key: 'k' } as never])).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.warm([], { concurrency: 0 })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(cache.prefetch(['k'], 'x' as never)).rejects.toBeInstanceOf(InvalidOptionError);
  });
});
