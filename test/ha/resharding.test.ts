import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Cache,
  createClient,
  fixedWindow,
  keySlot,
  Lock,
  RateLimiter,
  type RedisLike,
  scanEveryMaster,
} from '../../src/index.js';
import { RedisCluster } from '../harness/cluster.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { type ClusterNode, clusterNodes, moveSlot, ownerOf } from '../harness/resharding.js';
import { LoadLoop } from './load.js';

const IDENTITIES = ['alice', 'bob', 'carol', 'dave'];
const CACHE_KEYS = 40;

describe('resharding under load: slots move between masters while every primitive runs', () => {
  let cluster: RedisCluster;
  let redis: RedisLike;
  let peer: RedisLike;
  let nodes: ClusterNode[];
  const prefix = randomPrefix('reshard');
  let movedSlots = 0;
  let movedKeys = 0;
  /** What Redis counted for each identity, per its own answers. */
  const counted = new Map<string, number>();
  const cacheValues = new Map<string, number>();
  const overlaps = { value: 0 };
  let fences: number[] = [];
  const loopRecords: Record<string, LoadLoop> = {};
  let limiter: RateLimiter;
  let cache: Cache;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 2 });
    redis = createClient({ nodes: cluster.nodes, onError: quiet });
    peer = createClient({ nodes: cluster.nodes, onError: quiet });
    nodes = await clusterNodes(cluster);
    limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:rl`,
      // Anchored at the first hit, so no window boundary falls inside the test.
      limits: fixedWindow({ limit: 1e9, window: '1h', anchor: 'first-hit' }),
      onRedisError: 'deny',
      localDenyCache: false,
      // A slow answer on a loaded CI machine (a key mid-MIGRATE, an ASK) is not what this test
      // is about: the default 250 ms turned three of them into fallbacks once. A call left
      // unanswered still fails, after 2 s.
      timeout: '2s',
    });
    cache = new Cache({ redis, prefix: `${prefix}:c`, bus: false });
    const lock = new Lock({ redis, prefix: `${prefix}:l`, ttl: '5s', wait: '3s' });
    const peerLock = new Lock({ redis: peer, prefix: `${prefix}:l`, ttl: '5s', wait: '3s' });

    // Keys on every slot that will move: a counter per identity, cache entries, the lock.
    for (const identity of IDENTITIES) {
      await limiter.consume(identity);
      counted.set(identity, 1);
    }
    for (let i = 0; i < CACHE_KEYS; i++) {
      await cache.set(`k${i}`, i, { ttl: '5m' });
      cacheValues.set(`k${i}`, i);
    }
    await (await lock.acquire('res')).release();

    let working = 0;
    const fenceLog: number[] = [];
    loopRecords.limiter = new LoadLoop(
      async (n) => {
        const identity = IDENTITIES[n % IDENTITIES.length] as string;
        const result = await limiter.consume(identity);
        // Counted by Redis exactly when Redis answered (the 'deny' policy answers otherwise).
        if (result.reason === 'allowed') counted.set(identity, (counted.get(identity) ?? 0) + 1);
        else
          throw new Error(
            `limiter answered ${result.reason}: ${result.error?.message} (cause: ${String((result.error?.cause as Error | undefined)?.message)})`,
          );
      },
      { concurrency: 4 },
    );
    loopRecords.cache = new LoadLoop(
      async (n) => {
        const key = `k${n % CACHE_KEYS}`;
        if (n % 3 === 0) {
          const value = n;
          await cache.set(key, value, { ttl: '5m' });
          cacheValues.set(key, value);
        } else {
          const value = await cache.get(key);
          if (value === undefined) throw new Error(`cache lost ${key}`);
        }
      },
      { concurrency: 1 },
    );
    loopRecords.lock = new LoadLoop(
      async (n) =>
        (n % 2 ? lock : peerLock).withLock('res', async ({ fence }) => {
          if (working++ > 0) overlaps.value++;
          fenceLog.push(fence);
          await sleep(3);
          working--;
        }),
      { concurrency: 2 },
    );

    // Move every slot holding one of the prefix's keys to the other master, under that load.
    const slots = new Set<number>();
    for await (const keys of scanEveryMaster(redis, { match: `${prefix}*` })) {
      for (const key of keys) slots.add(keySlot(key));
    }
    const [first, second] = nodes as [ClusterNode, ClusterNode];
    for (const slot of slots) {
      const owner = await ownerOf(first.admin, slot);
      const [from, to] = owner === first.id ? [first, second] : [second, first];
      movedKeys += await moveSlot(slot, from, to);
      movedSlots++;
      expect(await ownerOf(second.admin, slot)).toBe(to.id);
    }
    await sleep(300);
    await Promise.all(Object.values(loopRecords).map((loop) => loop.stop()));
    fences = fenceLog;
    console.info(
      `[resharding] moved ${movedSlots} slots (${movedKeys} keys) under load:`,
      JSON.stringify(Object.fromEntries(Object.entries(loopRecords).map(([name, loop]) => [name, loop.summary(0)]))),
    );
  }, 90_000);

  afterAll(async () => {
    await cache?.close();
    redis?.disconnect();
    peer?.disconnect();
    for (const node of nodes ?? []) node.admin.disconnect();
    await cluster?.stop();
  });

  it('moved the slots, with keys in them, while calls ran', () => {
    expect(movedSlots).toBeGreaterThan(10);
    expect(movedKeys).toBeGreaterThanOrEqual(movedSlots);
    for (const loop of Object.values(loopRecords)) expect(loop.records.length).toBeGreaterThan(20);
  });

  it('followed MOVED and ASK: every call succeeded', () => {
    for (const [name, loop] of Object.entries(loopRecords)) {
      expect(
        loop.records.filter((record) => record.outcome !== 'ok').map((record) => record.message),
        name,
      ).toEqual([]);
    }
  });

  it('the limiter counted every hit exactly once: nothing lost, nothing double-counted', async () => {
    for (const identity of IDENTITIES) {
      const state = await limiter.peek(identity);
      expect(state.limits[0]?.used, identity).toBe(counted.get(identity));
    }
  });

  it('every cache value is intact (the last one written)', async () => {
    for (const [key, value] of cacheValues) expect(await cache.get(key), key).toBe(value);
  });

  it('the lock stayed exclusive and its fences kept increasing', () => {
    expect(overlaps.value).toBe(0);
    expect(fences.length).toBeGreaterThan(10);
    for (let i = 1; i < fences.length; i++) expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
  });
});
