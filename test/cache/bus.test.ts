import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  BusMessageError,
  Cache,
  createClient,
  isCluster,
  type RedisLike,
  type RedscaleError,
} from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { ClusterProxies, FaultProxy, type ProxyLink, waitUntil } from '../harness/index.js';
import { CACHE_TARGETS, type CacheTarget, cacheFactory, connectTarget, countCommands } from './support.js';

const rejections = unhandledRejections();

/** Publishes raw text on a cache's channel the way another app or redis-cli would. */
async function publishRaw(redis: RedisLike, channel: string, text: string): Promise<void> {
  if (isCluster(redis)) await redis.spublish(channel, text);
  else await redis.publish(channel, text);
}

describe.each<CacheTarget>(CACHE_TARGETS)('the invalidation bus on %s', (target) => {
  const factory = cacheFactory(target);
  // Another app (or redis-cli) on the same Redis: a client of its own.
  const other = connectTarget(target);
  afterAll(() => other.disconnect());

  it('drops malformed, foreign, oversized and newer-format messages, reports them, and keeps working', async () => {
    const prefix = randomPrefix('hostile');
    const reported: RedscaleError[] = [];
    const cache = await factory.make({ prefix, l1: { maxEntries: 100 }, onError: (error) => reported.push(error) });
    const writer = await factory.make({ prefix }, true);
    const events: BusMessageError[] = [];
    cache.on('bus-message-dropped', ({ error }) => events.push(error));
    const hostile = [
      '{"k":5}',
      'null',
      'garbage{',
      '[1,2]',
      '"a string"',
      '{"v":1}',
      '{"v":1,"i":"x","k":[1]}',
      '{"v":1,"i":"x","k":[""]}',
      '{"v":1,"i":"x","t":{"tag":"7"}}',
      '{"v":1,"i":"x","t":[1]}',
      '{"v":1,"i":"x","p":""}',
      `{"v":1,"i":"x","p":"${'*a'.repeat(1_000)}"}`,
      '{"v":1,"i":"x","h":-1}',
      '{"v":1.5,"i":"x","k":["k"]}',
      `{"v":1,"i":"x","k":["${'x'.repeat(1_100_000)}"]}`,
      '{"v":99,"i":"x","k":["k"]}',
      '{"v":99,"i":"y","k":["k"]}',
    ];
    await cache.set('k', 'v1');
    for (const text of hostile) await publishRaw(other, `${prefix}:bus`, text);
    await waitUntil(
      'every message to be dropped',
      async () => cache.stats().busMessagesDropped === hostile.length,
      3_000,
    );
    // Reported with a stable code; a newer format only once.
    expect(events).toHaveLength(hostile.length - 1);
    expect(events.every((error) => error.code === 'ERR_BUS_MESSAGE')).toBe(true);
    expect(events.filter((error) => error.reason === 'newer-format')).toHaveLength(1);
    expect(events.filter((error) => error.reason === 'too-large')).toHaveLength(1);
    expect(reported.filter((error) => error.code === 'ERR_BUS_MESSAGE')).toHaveLength(hostile.length - 1);
    // None of them touched L1, and the bus still carries the real thing.
    expect(cache.busConnected).toBe(true);
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);
    await writer.set('k', 'v2');
    await waitUntil('the next real message to arrive', async () => (await cache.get('k')) === 'v2', 2_000);
    expect(rejections.list).toEqual([]);
  });

  it('reads messages of redscale 0.1 (no format version) and splits its own large ones', async () => {
    const prefix = randomPrefix('compat');
    const cache = await factory.make({ prefix, l1: { maxEntries: 100 } });
    await cache.set('old', 1);
    await publishRaw(other, `${prefix}:bus`, JSON.stringify({ k: ['old'], i: 'a-0.1-instance' }));
    await waitUntil(
      'the 0.1 message to drop the key from L1',
      async () => (await countCommands(() => cache.get('old'))).count === 1,
      2_000,
    );
    // A delete of many long keys (one hash slot, so one script call) is announced in several
    // messages, none of them dropped for its size. Megabytes move: a patient client and budget.
    const writerRedis = connectTarget(target, { commandTimeout: '20s' });
    const writer = new Cache({ redis: writerRedis, prefix, timeout: '20s' });
    try {
      await writer.whenReady({ timeout: '10s' });
      const keys = Array.from({ length: 70 }, (_, i) => `{big}:${String(i).padStart(3, '0')}:${'k'.repeat(16_000)}`);
      for (const key of keys.slice(0, 3)) await cache.set(key, 'v');
      await writer.delete(keys);
      await waitUntil(
        'the delete to reach L1',
        async () => (await countCommands(() => cache.get(keys[2] as string))).count === 1,
        5_000,
      );
      expect(cache.stats().busMessagesDropped).toBe(0);
    } finally {
      await writer.close();
      writerRedis.disconnect();
    }
  });

  it('hears its own heartbeats (the channel as Redis delivers it, keyPrefix included)', async () => {
    const cache = await factory.make({ bus: { heartbeat: 100 }, l1: { maxEntries: 10 } });
    await sleep(600);
    expect(cache.busConnected).toBe(true);
    expect(cache.stats()).toMatchObject({ heartbeatsMissed: 0, busDrops: 0 });
    await cache.set('k', 1);
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);
  });
});

describe('a half-open subscriber link (delivery stops, the connection stays open)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  async function scenario(reader: RedisLike, writerClient: RedisLike, subscriberLink: () => Promise<ProxyLink>) {
    const prefix = randomPrefix('half-open');
    const HEARTBEAT = 200;
    const cache = new Cache({ redis: reader, prefix, l1: { maxEntries: 100 }, bus: { heartbeat: HEARTBEAT } });
    const writer = new Cache({ redis: writerClient, prefix });
    cleanups.push(() => Promise.all([cache.close(), writer.close()]).then(() => {}));
    await Promise.all([cache.whenReady({ timeout: '10s' }), writer.whenReady({ timeout: '10s' })]);
    const drops: string[] = [];
    cache.on('bus-drop', ({ cause }) => drops.push(cause));
    await cache.set('k', 'v1');
    expect((await countCommands(() => cache.get('k'))).count).toBe(0);

    (await subscriberLink()).set({ kind: 'blackhole' });
    const stopped = performance.now();
    await writer.set('k', 'v2'); // its announcement never reaches the reader
    await waitUntil('the reader to stop trusting L1', async () => (await cache.get('k')) === 'v2', 5_000);
    const stale = performance.now() - stopped;
    expect(stale).toBeLessThan(2 * HEARTBEAT + 600); // the documented bound, plus a loaded machine's slack
    expect(drops[0]).toBe('heartbeat');
    expect(cache.stats().heartbeatsMissed).toBeGreaterThanOrEqual(1);
    // It reconnected on a new link (the proxy passes new links): L1 and the bus work again.
    await waitUntil('the bus to come back', async () => cache.busConnected, 5_000);
    await cache.get('k');
    await writer.set('k', 'v3');
    await waitUntil('L1 to be coherent again', async () => (await cache.get('k')) === 'v3', 2_000);
  }

  it('standalone: a missed heartbeat counts as a drop within 2 heartbeats', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const reader = createClient({ url: proxy.url, onError: quiet });
    const writer = createClient({ url: inject('redisUrl'), onError: quiet });
    cleanups.push(async () => {
      reader.disconnect();
      writer.disconnect();
      await proxy.close();
    });
    await scenario(reader, writer, () => proxy.waitForLink('subscribe'));
  });

  it('Cluster: a missed heartbeat counts as a drop within 2 heartbeats', async () => {
    const proxies = await ClusterProxies.start(inject('clusterNodes'));
    const reader = createClient({
      nodes: proxies.nodes,
      clusterOptions: { natMap: proxies.natMap },
      onError: quiet,
    });
    const writer = createClient({ nodes: inject('clusterNodes'), onError: quiet });
    cleanups.push(async () => {
      reader.disconnect();
      writer.disconnect();
      await proxies.close();
    });
    const link = async () => {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const found = proxies.all.flatMap((proxy) => proxy.openLinks).find((candidate) => candidate.sent('ssubscribe'));
        if (found) return found;
        if (Date.now() > deadline) throw new Error('no ssubscribe link');
        await sleep(10);
      }
    };
    await scenario(reader, writer, link);
  });
});
