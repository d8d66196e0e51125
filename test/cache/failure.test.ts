import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Cache, createClient, type RedscaleError } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer, startCluster, waitUntil } from '../harness/index.js';
import { countCommands, countingLoader } from './support.js';

const rejections = unhandledRejections();

describe('Cache on its own servers', () => {
  const servers: RedisServer[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
    await Promise.all(servers.map((server) => server.dispose()));
  });
  async function setup(options: Partial<ConstructorParameters<typeof Cache>[0]> = {}) {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const errors: RedscaleError[] = [];
    const cache = new Cache({ redis, prefix: randomPrefix('own'), onError: (error) => errors.push(error), ...options });
    await cache.whenReady();
    cleanups.push(async () => {
      await cache.close();
      redis.disconnect();
    });
    return { server, redis: redis as Redis, cache, errors };
  }

  it('invalidates 100,000 keys by pattern in small batches (SCAN + UNLINK, never KEYS), touching nothing else', async () => {
    const prefix = 'app';
    const { redis, cache } = await setup({ prefix });
    const value = 'x'.repeat(100);
    for (let batch = 0; batch < 100_000; batch += 5_000) {
      const pipeline = redis.pipeline();
      for (let i = batch; i < batch + 5_000; i++) pipeline.set(`${prefix}:c:session:${i}`, value);
      await pipeline.exec();
    }
    await redis.set(`${prefix}:c:user:1`, value); // inside the prefix, outside the pattern
    await redis.set('other-app:c:session:1', value); // outside the prefix
    await redis.set('session:1', value);
    // How long a command blocks Redis is the bench's to measure (pattern-invalidation: longest
    // command); the test proves the shape that bounds it: many small commands, none over all keys.
    await redis.config('RESETSTAT');

    const deleted = await cache.invalidatePattern('session:*');

    const stats = String(await redis.info('commandstats'));
    const calls = (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    expect(deleted).toBe(100_000);
    expect(calls('keys')).toBe(0);
    expect(calls('del')).toBe(0);
    // At most 1,000 keys per UNLINK on average, over a cursor walk of SCANs.
    expect(calls('unlink')).toBeGreaterThanOrEqual(100);
    expect(calls('scan')).toBeGreaterThanOrEqual(100);
    expect(await redis.exists(`${prefix}:c:user:1`, 'other-app:c:session:1', 'session:1')).toBe(3);
    expect(await redis.dbsize()).toBeLessThan(10);
  }, 60_000);

  it('flushes L1 when the bus connection drops, and is coherent again once it is back', async () => {
    const { server, cache } = await setup({ prefix: 'bus', l1: { maxEntries: 100 } });
    const other = createClient({ url: server.url, onError: quiet });
    const writer = new Cache({ redis: other, prefix: 'bus' });
    await writer.whenReady();
    cleanups.push(async () => {
      await writer.close();
      other.disconnect();
    });
    await cache.set('k', 'v1');
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);

    const drops: number[] = [];
    cache.on('bus-drop', () => drops.push(Date.now()));
    await server.command('CLIENT KILL TYPE pubsub');
    await waitUntil('the drop to be seen', async () => drops.length > 0, 2_000);
    expect(cache.stats().busDrops).toBe(1);
    // L1 was flushed: the next read goes to Redis.
    expect((await countCommands(() => cache.get('k'))).count).toBe(1);

    await waitUntil('the bus to come back', async () => cache.busConnected, 5_000);
    await cache.get('k');
    await sleep(20);
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);
    await writer.set('k', 'v2');
    await waitUntil('another instance’s write to reach L1', async () => (await cache.get('k')) === 'v2', 2_000);
  });

  it('keeps answering getOrSet from the loader when Redis is killed, within the timeout, and recovers', async () => {
    const { server, cache, errors } = await setup({ timeout: 100 });
    const loader = countingLoader('fresh from the database');
    expect(await cache.getOrSet('k', loader)).toBe('fresh from the database');
    await server.kill();

    const durations: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      expect(await cache.getOrSet(`k${i}`, loader)).toBe('fresh from the database');
      durations.push(performance.now() - started);
    }
    expect(Math.max(...durations)).toBeLessThan(300);
    expect(await cache.get('k')).toBeUndefined();
    expect(await cache.set('k', 'x')).toBe(false);
    await expect(cache.invalidateTags(['t'])).rejects.toMatchObject({
      code: expect.stringMatching(/ERR_TIMEOUT|ERR_REDIS/),
    });
    expect(errors.length).toBeGreaterThan(0);
    expect(cache.stats().redisErrors).toBeGreaterThan(0);

    await server.restart();
    await waitUntil('writes to work again', async () => cache.set('back', 'yes'), 5_000);
    expect(await cache.get('back')).toBe('yes');
    const calls = loader.calls;
    expect(await cache.getOrSet('back-2', loader)).toBe('fresh from the database');
    expect(await cache.getOrSet('back-2', loader)).toBe('fresh from the database');
    expect(loader.calls).toBe(calls + 1);
    await sleep(50);
    expect(rejections.list).toEqual([]);
  });

  it('counts each Redis failure once: stats().redisErrors, redis-error events and onError agree', async () => {
    const { server, cache, errors } = await setup({ timeout: 100 });
    const events: RedscaleError[] = [];
    cache.on('redis-error', ({ error }) => events.push(error));
    await cache.set('k', 1, { tags: ['t'] });
    await server.kill();
    await cache.get('k');
    await cache.has('other');
    await cache.set('k', 2);
    await cache.getOrSet('g', () => 'loaded', { tags: ['t'] });
    await expect(cache.delete(['k', 'g'])).rejects.toBeDefined();
    await expect(cache.invalidateTags(['t'])).rejects.toBeDefined();
    await expect(cache.invalidatePattern('*')).rejects.toBeDefined();
    await sleep(300); // the bus' subscriber fails to reconnect meanwhile, too
    expect(events.length).toBeGreaterThanOrEqual(7);
    expect(cache.stats().redisErrors).toBe(events.length);
    expect(errors).toEqual(events);
    await server.restart();
  });

  it('whenReady rejects when Redis stays down past its timeout, when aborted, and after close', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    await server.kill();
    const redis = createClient({ url: server.url, onError: quiet });
    const cache = new Cache({ redis, prefix: randomPrefix('ready'), onError: () => {} });
    cleanups.push(async () => {
      await cache.close();
      redis.disconnect();
    });
    const settled = <T>(promise: Promise<T>) =>
      Promise.race([
        promise.then(
          () => 'resolved',
          (error: { code?: string }) => error.code,
        ),
        sleep(3_000, 'hung'),
      ]);
    const started = performance.now();
    expect(await settled(cache.whenReady({ timeout: 300 }))).toBe('ERR_TIMEOUT');
    expect(performance.now() - started).toBeLessThan(1_000);
    const controller = new AbortController();
    const aborted = settled(cache.whenReady({ timeout: '10s', signal: controller.signal }));
    controller.abort();
    expect(await aborted).toBe('ERR_ABORTED');
    const pending = settled(cache.whenReady({ timeout: '10s' }));
    await cache.close();
    expect(await pending).toBe('ERR_CLOSED');
    expect(await settled(cache.whenReady())).toBe('ERR_CLOSED');
    await expect(cache.whenReady({ timeout: 'soon' as never })).rejects.toThrow(/"timeout" for Cache.whenReady\(\)/);
  });

  it('on a Cluster too: the bus drop flushes L1, and coherence resumes', async () => {
    const cluster = await startCluster();
    cleanups.push(() => cluster.stop());
    const redis = createClient({ nodes: cluster.nodes, onError: quiet });
    const other = createClient({ nodes: cluster.nodes, onError: quiet });
    const cache = new Cache({ redis, prefix: 'bus', l1: { maxEntries: 100 } });
    const writer = new Cache({ redis: other, prefix: 'bus' });
    await Promise.all([cache.whenReady(), writer.whenReady()]);
    cleanups.unshift(async () => {
      await Promise.all([cache.close(), writer.close()]);
      redis.disconnect();
      other.disconnect();
    });
    await cache.set('k', 'v1');
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);
    await Promise.all(cluster.servers.map((server) => server.command('CLIENT KILL TYPE pubsub')));
    await waitUntil('the drop to be seen', async () => cache.stats().busDrops === 1, 2_000);
    expect((await countCommands(() => cache.get('k'))).count).toBe(1);
    await waitUntil('the bus to come back', async () => cache.busConnected && writer.busConnected, 5_000);
    await writer.set('k', 'v2');
    await waitUntil('another instance’s write to reach L1', async () => (await cache.get('k')) === 'v2', 2_000);
  });
});
