import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis5';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { hashTagOnNode, mastersOf, RedisHealth, type RedisLike } from '../../src/index.js';
import { runScript } from '../../src/scripts/registry.js';
import { deletePrefix, randomPrefix } from '../harness/context.js';

// redscale's peer range is ioredis ^5.11 || ^6; the suite runs on 6, this file on 5.
describe.each(['standalone', 'cluster'] as const)('ioredis 5 on %s', (topology) => {
  const redis = (topology === 'cluster'
    ? new Cluster5(inject('clusterNodes'), { enableAutoPipelining: true })
    : new Redis5(inject('redisUrl'), { enableAutoPipelining: true })) as unknown as RedisLike;
  const prefix = randomPrefix('io5');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('runs scripts on every master, in the same tick as other commands, and after SCRIPT FLUSH', async () => {
    await redis.ping();
    for (const node of mastersOf(redis)) {
      const key = `${prefix}:${hashTagOnNode(redis, node)}`;
      const [, reply] = await Promise.all([redis.get(key), runScript(redis, 'healthProbe', [key], [5_000])]);
      expect(reply).toHaveLength(2);
    }
    await Promise.all(mastersOf(redis).map((node) => node.script('FLUSH')));
    for (const node of mastersOf(redis)) {
      await expect(
        runScript(redis, 'healthProbe', [`${prefix}:${hashTagOnNode(redis, node)}`], [5_000]),
      ).resolves.toHaveLength(2);
    }
  });

  it('passes a health check', async () => {
    const report = await new RedisHealth({ redis, prefix }).check();
    expect(report.status).toBe('up');
    expect(report.nodes.filter((node) => node.writable)).toHaveLength(topology === 'cluster' ? 3 : 1);
  });
});
