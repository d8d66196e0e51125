import { afterAll, describe, expect, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import { Cache, createClient } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisCluster } from '../harness/index.js';

const rejections = unhandledRejections();

describe('getMany and setMany on a Cluster with one master dead', () => {
  let cluster: RedisCluster | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const cleanup of cleanups) await cleanup();
    await cluster?.stop();
  });

  it('a dead master costs only its own keys: the others are read and written, its own are misses and `false`', async () => {
    cluster = await RedisCluster.start({ args: ['--cluster-require-full-coverage', 'no'] });
    const redis = createClient({ nodes: cluster.nodes, onError: quiet });
    const prefix = randomPrefix('many-dead');
    const cache = new Cache({ redis, prefix, timeout: 1_000 });
    cleanups.push(async () => {
      await cache.close();
      redis.disconnect();
    });
    await cache.whenReady({ timeout: '10s' });
    const keys = Array.from({ length: 120 }, (_, i) => `key:${i}`);
    expect(await cache.setMany(keys.map((key) => ({ key, value: key })))).toBe(true);

    const channelNode = nodeOf(redis, `${prefix}:bus`);
    const victim = cluster.servers.find((server) => `127.0.0.1:${server.port}` !== channelNode);
    if (!victim) throw new Error('no master to kill');
    const deadNode = `127.0.0.1:${victim.port}`;
    const onDead = (key: string) => nodeOf(redis, `${prefix}:c:${key}`) === deadNode;
    expect(keys.filter(onDead).length).toBeGreaterThan(10);
    await victim.kill();

    const values = await cache.getMany(keys);
    expect(values).toEqual(keys.map((key) => (onDead(key) ? undefined : key)));
    const written = await cache.setMany(keys.map((key) => ({ key, value: `new ${key}` })));
    expect(written).toBe(false);
    expect(await cache.getMany(keys.filter((key) => !onDead(key)))).toEqual(
      keys.filter((key) => !onDead(key)).map((key) => `new ${key}`),
    );
    expect(cache.stats().redisErrors).toBeGreaterThan(0);
    expect(rejections.list).toEqual([]);
  }, 90_000);
});
