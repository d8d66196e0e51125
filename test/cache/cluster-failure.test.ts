import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import { Cache, createClient } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisCluster } from '../harness/index.js';

const rejections = unhandledRejections();

describe('Cache on a Cluster with one master dead', () => {
  let cluster: RedisCluster | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
    await cluster?.stop();
  });

  it('answers ≥ 99% of the calls for keys on healthy masters from Redis: a dead master costs only its own slots', async () => {
    cluster = await RedisCluster.start({ args: ['--cluster-require-full-coverage', 'no'] });
    const redis = createClient({ nodes: cluster.nodes, onError: quiet });
    const prefix = randomPrefix('dead-master');
    // A timeout no healthy call reaches even on a loaded machine: a healthy call that fails here
    // fails because of the dead master, not because the machine is slow.
    const cache = new Cache({ redis, prefix, timeout: 1_000 });
    cleanups.push(async () => {
      await cache.close();
      redis.disconnect();
    });
    await cache.whenReady({ timeout: '10s' });
    const keys = Array.from({ length: 300 }, (_, i) => `key:${i}`);
    for (const key of keys) expect(await cache.set(key, key)).toBe(true);

    // Kill a master that does not own the bus channel (its loss would only turn L1 off).
    const channelNode = nodeOf(redis, `${prefix}:bus`);
    const victim = cluster.servers.find((server) => `127.0.0.1:${server.port}` !== channelNode);
    if (!victim) throw new Error('no master to kill');
    const deadNode = `127.0.0.1:${victim.port}`;
    const healthy = keys.filter((key) => nodeOf(redis, `${prefix}:c:${key}`) !== deadNode);
    const dead = keys.filter((key) => nodeOf(redis, `${prefix}:c:${key}`) === deadNode);
    expect(dead.length).toBeGreaterThan(50);
    await victim.kill();

    // Long enough for the dead node's failures to open a breaker (1 s) and for it to probe again.
    let healthyCalls = 0;
    let healthyAnswered = 0;
    let loads = 0;
    let deadMs: number[] = [];
    const until = performance.now() + 5_000;
    while (performance.now() < until) {
      const results = await Promise.all(
        keys.map(async (key) => {
          const started = performance.now();
          const value = await cache.getOrSet(key, () => {
            loads++;
            return `loaded ${key}`;
          });
          return { key, fromRedis: value === key, ms: performance.now() - started };
        }),
      );
      deadMs = [];
      for (const { key, fromRedis, ms } of results) {
        if (!healthy.includes(key)) {
          deadMs.push(ms);
          continue;
        }
        healthyCalls++;
        if (fromRedis) healthyAnswered++;
      }
    }
    expect(healthyCalls).toBeGreaterThan(healthy.length * 3);
    expect(healthyAnswered / healthyCalls).toBeGreaterThanOrEqual(0.99);
    // The dead master's own keys went to the loader, and soon without waiting on Redis: its own
    // breaker opened although the healthy masters kept answering.
    expect(loads).toBeGreaterThanOrEqual(dead.length);
    deadMs.sort((a, b) => a - b);
    expect(deadMs[Math.floor(deadMs.length / 2)]).toBeLessThan(200);
    expect(cache.stats().breakerSkips).toBeGreaterThan(0);
    expect(rejections.list).toEqual([]);
  }, 90_000);
});
