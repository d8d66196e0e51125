import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis';
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis5';
import { afterAll, describe, expect, inject, it } from 'vitest';
import {
  fixedWindow,
  type LimitRule,
  RateLimiter,
  type RedisLike,
  slidingLog,
  slidingWindow,
} from '../../src/index.js';
import { deletePrefix, randomPrefix } from '../harness/context.js';

// redscale's peer range is ioredis ^5.11 || ^6; the other limiter suites run on 6 through
// createClient (auto-pipelining off). ioredis 5 decodes replies and routes auto-pipelined EVALSHA
// on a Cluster with its own code: the limiter's packed replies, batches and pipelines must work
// on plain clients of both, with auto-pipelining off and on.
describe.each([
  [5, 'standalone', false],
  [5, 'standalone', true],
  [5, 'cluster', false],
  [5, 'cluster', true],
  [6, 'standalone', true],
  [6, 'cluster', true],
] as const)('the limiter on ioredis %s (%s, autoPipelining %s)', (version, topology, autoPipelining) => {
  const options = { enableAutoPipelining: autoPipelining };
  const redis = (topology === 'cluster'
    ? version === 5
      ? new Cluster5(inject('clusterNodes'), options)
      : new Cluster6(inject('clusterNodes'), options)
    : version === 5
      ? new Redis5(inject('redisUrl'), options)
      : new Redis6(inject('redisUrl'), options)) as unknown as RedisLike;
  const prefix = randomPrefix('rl-io5');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('decides exactly, batched or not, with one limit or several', async () => {
    await redis.ping();
    const shapes: Array<[string, LimitRule | LimitRule[]]> = [
      ['fixed', fixedWindow({ limit: 3, window: '1m' })],
      ['first-hit', fixedWindow({ limit: 3, window: '1m', anchor: 'first-hit' })],
      ['sliding', slidingWindow({ limit: 3, window: '1m' })],
      ['log', slidingLog({ limit: 3, window: '1m' })],
      ['several', [fixedWindow({ limit: 3, window: '1m' }), slidingWindow({ limit: 10, window: '1h' })]],
    ];
    for (const [name, limits] of shapes) {
      const limiter = new RateLimiter({ redis, prefix: `${prefix}:${name}`, limits, timeout: '5s' });
      const ids = Array.from({ length: 30 }, (_, i) => `id-${i}`);
      const results = await Promise.all(ids.flatMap((id) => [1, 2, 3, 4].map(() => limiter.consume(id))));
      expect(results.every((result) => result.source === 'redis')).toBe(true);
      expect(results.filter((result) => result.allowed)).toHaveLength(90);
      await limiter.refund('id-0');
      expect((await limiter.peek('id-0')).remaining).toBe(1);
      await limiter.reset('id-0');
      expect(await limiter.consume('id-0')).toMatchObject({ allowed: true, remaining: 2 });
    }
  });
});
