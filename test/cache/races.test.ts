import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { Cache, type CacheOptions, createClient, type RedisLike, scanEveryMaster } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { FaultProxy, type ProxyLink, RedisServer, waitUntil } from '../harness/index.js';
import { countingLoader } from './support.js';

const rejections = unhandledRejections();

/**
 * Races driven with the fault proxy, on a server of the test's own (its commandstats are exact):
 * a "reader" instance talks to Redis through the proxy, a "writer" instance directly.
 */
describe('Cache under reconnections, stalls and late replies', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  let server: RedisServer;
  let direct: Redis;
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    direct?.disconnect();
    await server?.dispose();
  });

  async function setup(readerOptions: Partial<CacheOptions> = {}, client?: (url: string) => RedisLike) {
    server ??= await RedisServer.start();
    direct ??= new Redis(server.url);
    const proxy = await FaultProxy.start(server.url);
    const prefix = randomPrefix('race');
    // Replies are held for seconds on purpose: the client's own command timeout must not cut them.
    const readerRedis =
      client?.(proxy.url) ??
      createClient({ url: proxy.url, commandTimeout: '10s', maxReconnectDelay: 200, onError: quiet });
    const writerRedis = createClient({ url: server.url, onError: quiet });
    const reader = new Cache({ redis: readerRedis, prefix, timeout: '20s', ...readerOptions });
    const writer = new Cache({ redis: writerRedis, prefix, timeout: '20s' });
    cleanups.push(async () => {
      await Promise.all([reader.close(), writer.close()]);
      readerRedis.disconnect();
      writerRedis.disconnect();
      await proxy.close();
    });
    await Promise.all([reader.whenReady({ timeout: '10s' }), writer.whenReady({ timeout: '10s' })]);
    const dataLink = (): ProxyLink => {
      const link = proxy.openLinks.find((candidate) => !candidate.sent('subscribe'));
      if (!link) throw new Error('no data link');
      return link;
    };
    /** Drops the reader's subscription and keeps it down until `reconnect()`. */
    const dropBus = async () => {
      proxy.refuse(true);
      (await proxy.waitForLink('subscribe')).reset();
      await waitUntil('the reader to see the drop', async () => !reader.busConnected, 2_000);
      return async () => {
        proxy.refuse(false);
        await waitUntil('the reader to resubscribe', async () => reader.busConnected, 5_000);
      };
    };
    return { proxy, prefix, reader, writer, dataLink, dropBus };
  }

  async function keysUnder(match: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const batch of scanEveryMaster(direct, { match })) keys.push(...batch);
    return keys;
  }

  async function scriptCalls(): Promise<number> {
    const info = await direct.info('commandstats');
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
    return calls('evalsha') + calls('eval');
  }

  it('a tag version read before a missed invalidation, answered after the bus resubscribed, is not kept', async () => {
    // No heartbeat during the race: the generation alone must catch it.
    const { reader, writer, dataLink, dropBus } = await setup({ l1: { maxEntries: 100 }, bus: { heartbeat: '1h' } });
    await writer.set('k', 'before', { tags: ['t'] });
    const reconnect = await dropBus();
    dataLink().set({ kind: 'delay', ms: 1_500 });
    const calls = await scriptCalls();
    // The reader reads t's version (to write k2): Redis answers at once, the reply is 1.5 s on its way.
    const writing = reader.set('k2', 'x', { tags: ['t'] });
    await waitUntil('the version read to run on Redis', async () => (await scriptCalls()) > calls, 5_000);
    await writer.invalidateTags(['t']); // announced while the reader's bus is down: missed
    await reconnect(); // before the old version's reply lands
    dataLink().set({ kind: 'pass' });
    expect(await writing).toBe(true);
    // The reader must not trust the old version it learned across the gap.
    expect(await reader.get('k')).toBeUndefined();
    expect(await writer.get('k')).toBeUndefined();
  }, 30_000);

  it('a write whose reply straddles a drop and a reconnection does not fill L1', async () => {
    const { reader, writer, dataLink, dropBus } = await setup({ l1: { maxEntries: 100 }, bus: { heartbeat: '1h' } });
    const reconnect = await dropBus();
    dataLink().set({ kind: 'delay', ms: 1_500 });
    const writing = reader.set('k', 'mine');
    await waitUntil('the reader’s write to land', async () => (await writer.get('k')) === 'mine', 5_000);
    await writer.set('k', 'theirs'); // announced while the reader's bus is down: missed
    await reconnect();
    dataLink().set({ kind: 'pass' });
    expect(await writing).toBe(true);
    expect(await writer.get('k')).toBe('theirs');
    expect(await reader.get('k')).toBe('theirs'); // not 'mine' from L1
  }, 30_000);

  it('with a plain ioredis client and a stalled Redis, every call settles within the timeout', async () => {
    const TIMEOUT = 200;
    const { proxy, prefix, reader } = await setup(
      { timeout: TIMEOUT, l1: { maxEntries: 10 } },
      (url) => new Redis(url), // no commandTimeout, 20 retries: the whole outage, left to itself
    );
    await reader.set('k', 1, { tags: ['t'] });
    proxy.set({ kind: 'pause' });
    const loader = countingLoader('loaded');
    const failing = countingLoader('never', { fail: () => true });
    const calls: Array<[string, () => Promise<unknown>, (outcome: PromiseSettledResult<unknown>) => void]> = [
      ['get', () => reader.get('cold'), (o) => expect(o).toEqual({ status: 'fulfilled', value: undefined })],
      ['has', () => reader.has('cold'), (o) => expect(o).toEqual({ status: 'fulfilled', value: false })],
      ['set', () => reader.set('late', 'x'), (o) => expect(o).toEqual({ status: 'fulfilled', value: false })],
      [
        'getOrSet',
        () => reader.getOrSet('y', loader),
        (o) => expect(o).toEqual({ status: 'fulfilled', value: 'loaded' }),
      ],
      ['getOrSet, failing', () => reader.getOrSet('z', failing), (o) => expect(o.status).toBe('rejected')],
      [
        'delete',
        () => reader.delete('k'),
        (o) => expect(o).toMatchObject({ status: 'rejected', reason: { code: 'ERR_TIMEOUT' } }),
      ],
      ['invalidateTags', () => reader.invalidateTags(['t']), (o) => expect(o.status).toBe('rejected')],
      ['invalidatePattern', () => reader.invalidatePattern('*'), (o) => expect(o.status).toBe('rejected')],
    ];
    for (const [name, call, check] of calls) {
      const started = performance.now();
      const guard = sleep(3_000).then(() => ({ status: 'rejected' as const, reason: new Error(`${name} hung`) }));
      const outcome = await Promise.race([
        call().then(
          (value) => ({ status: 'fulfilled' as const, value }),
          (reason: unknown) => ({ status: 'rejected' as const, reason }),
        ),
        guard,
      ]);
      const took = performance.now() - started;
      expect(String((outcome as { reason?: unknown }).reason ?? '')).not.toMatch(/hung/);
      expect(took, name).toBeLessThan(TIMEOUT + 300);
      check(outcome);
    }
    // Redis resumes and runs what was queued: nothing the cache gave up on may take effect.
    proxy.pass();
    await sleep(500);
    expect(await direct.exists(`${prefix}:c:late`, `${prefix}:c:y`)).toBe(0);
    expect(await keysUnder(`${prefix}:cl:*`)).toEqual([]);
    expect(rejections.list).toEqual([]);
  }, 30_000);

  it('one deadline per getOrSet: a slow Redis costs one timeout, not one per step', async () => {
    const TIMEOUT = 300;
    const { proxy, reader } = await setup({ timeout: TIMEOUT });
    await reader.set('warm', 1, { tags: ['t'] }); // scripts loaded, server clock learned
    // Every step now takes ~250 ms: each would fit in its own timeout, all together do not.
    proxy.set({ kind: 'delay', ms: 125 });
    const started = performance.now();
    expect(await reader.getOrSet('k', () => 'v', { tags: ['t'] })).toBe('v');
    expect(performance.now() - started).toBeLessThan(TIMEOUT + 250);
    proxy.pass();
  }, 30_000);

  it('one deadline per getOrSet: a Redis that stalls during the loader costs what the call had left', async () => {
    const TIMEOUT = 600;
    const { proxy, reader } = await setup({ timeout: TIMEOUT });
    await reader.set('warm', 1);
    const started = performance.now();
    const value = await reader.getOrSet('k', async () => {
      proxy.set({ kind: 'pause' }); // Redis stalls after the read and the fill lock
      await sleep(200);
      return 'v';
    });
    expect(value).toBe('v');
    // What was left of one timeout, not a timeout per remaining step (write, release: 2 more before).
    expect(performance.now() - started).toBeLessThan(200 + TIMEOUT * 1.5);
    proxy.pass();
    await sleep(300);
    expect(await reader.get('k')).toBeUndefined(); // the write the call gave up on did not land late
  }, 30_000);

  it('a fill lock granted after its caller gave up is refused, so nobody waits for it', async () => {
    const { proxy, prefix, reader, writer } = await setup({ timeout: 200 });
    await reader.set('warm', 1);
    reader.once('miss', () => proxy.set({ kind: 'pause' })); // the read answered, the lock request stalls
    expect(await reader.getOrSet('k', () => 'from the reader')).toBe('from the reader');
    proxy.pass(); // the lock request reaches Redis now, after its caller gave up
    await sleep(200);
    expect(await keysUnder(`${prefix}:cl:*`)).toEqual([]);
    const started = performance.now();
    expect(await writer.getOrSet('k', () => 'from the writer')).toBe('from the writer');
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(writer.stats().lockWaits).toBe(0);
  }, 30_000);
});
