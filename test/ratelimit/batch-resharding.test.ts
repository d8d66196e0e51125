import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient, fixedWindow, keySlot, RateLimiter, type RedisLike, scanEveryMaster } from '../../src/index.js';
import { RedisCluster } from '../harness/cluster.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { type ClusterNode, clusterNodes, moveSlot, ownerOf } from '../harness/resharding.js';

/**
 * The batcher's quarter-in-flight batches on a Cluster: with 48 checks looping (so
 * batches are pipelines of several checks per node, threshold above 1), every slot of the
 * identities moves to the other master. Pipeline entries come back MOVED/ASK/TRYAGAIN (resent
 * alone) or the pipeline is refused as split (each resent alone). Every hit must count exactly
 * once, every call must be answered by Redis, and afterwards the batcher must be idle again: no
 * command or check left counted in flight (checked under fake setImmediate, where a queue only
 * goes at a threshold of 1 or at the last reply).
 */
describe('limiter batches while slots move', () => {
  let cluster: RedisCluster;
  let redis: RedisLike;
  let nodes: ClusterNode[];
  const prefix = randomPrefix('r3-reshard');
  const identities = Array.from({ length: 24 }, (_, i) => `id${i}`);
  const counted = new Map<string, number>();
  const failures: string[] = [];
  let limiter: RateLimiter;

  beforeAll(async () => {
    cluster = await RedisCluster.start({ masters: 2 });
    redis = createClient({ nodes: cluster.nodes, onError: quiet });
    nodes = await clusterNodes(cluster);
    limiter = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 1e9, window: '1h', anchor: 'first-hit' }),
      onRedisError: 'deny',
      localDenyCache: false,
      timeout: 2_000,
    });
    for (const id of identities) {
      await limiter.consume(id);
      counted.set(id, 1);
    }
    let running = true;
    let n = 0;
    const loops = Array.from({ length: 48 }, async () => {
      while (running) {
        const id = identities[n++ % identities.length] as string;
        const result = await limiter.consume(id);
        if (result.reason === 'allowed') counted.set(id, (counted.get(id) ?? 0) + 1);
        else failures.push(`${result.reason}: ${result.error?.message}`);
      }
    });
    const slots = new Set<number>();
    for await (const keys of scanEveryMaster(redis, { match: `${prefix}*` })) {
      for (const key of keys) slots.add(keySlot(key));
    }
    const [first, second] = nodes as [ClusterNode, ClusterNode];
    for (const slot of slots) {
      const owner = await ownerOf(first.admin, slot);
      const [from, to] = owner === first.id ? [first, second] : [second, first];
      await moveSlot(slot, from, to, 10);
    }
    await sleep(200);
    running = false;
    await Promise.all(loops);
  }, 90_000);

  afterAll(async () => {
    redis?.disconnect();
    for (const node of nodes ?? []) node.admin.disconnect();
    await cluster?.stop();
  });

  it('answered every call from Redis', () => {
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('counted every hit exactly once', async () => {
    for (const id of identities) expect((await limiter.peek(id)).limits[0]?.used, id).toBe(counted.get(id));
  });

  it('is idle afterwards: concurrent checks flow under fake setImmediate', async () => {
    vi.useFakeTimers({ toFake: ['setImmediate'] });
    try {
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(identities.map((id) => limiter.consume(id)));
        expect(results.map((result) => result.reason)).toEqual(identities.map(() => 'allowed'));
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
