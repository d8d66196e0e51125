import { afterAll } from 'vitest';
import { RateLimiter, type RateLimiterOptions, type RedisLike } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/**
 * Where a contract test runs: the in-memory backend, or Redis (standalone or Cluster), also
 * through a client with an ioredis `keyPrefix` (which ioredis adds to every key it sends, so
 * slots and scans must see the key as Redis does).
 */
export type Backend = 'memory' | 'standalone' | 'cluster' | 'standalone, keyPrefix' | 'cluster, keyPrefix';
export const BACKENDS: Backend[] = ['memory', 'standalone', 'cluster'];
export const CONTRACT_BACKENDS: Backend[] = [...BACKENDS, 'standalone, keyPrefix', 'cluster, keyPrefix'];

function clientFor(backend: Exclude<Backend, 'memory'>): RedisLike {
  if (backend === 'standalone' || backend === 'cluster') return connect(backend);
  const keyPrefix = backend === 'standalone, keyPrefix' ? 'app-a:' : 'app-b:';
  return backend === 'standalone, keyPrefix'
    ? connect('standalone', { redisOptions: { keyPrefix } })
    : connect('cluster', { clusterOptions: { keyPrefix } });
}

/**
 * A controlled clock. It starts at the next UTC midnight (so windows of up to a day start
 * exactly at `start`) and only moves forward, staying ahead of real time: Redis expires keys by
 * real time, and a clock behind it could see live state expire.
 */
export function testClock() {
  const start = Math.ceil(Date.now() / 86_400_000) * 86_400_000;
  let now = start;
  return {
    start,
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
    set(at: number) {
      now = Math.max(now, at);
    },
  };
}

/** Builds limiters on one backend with a fresh prefix, and cleans up the keys afterwards. */
export function limiterFactory(backend: Backend) {
  const redis: RedisLike | undefined = backend === 'memory' ? undefined : clientFor(backend);
  const prefixes: string[] = [];
  afterAll(async () => {
    if (!redis) return;
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  return {
    redis,
    make(options: Omit<RateLimiterOptions, 'redis'>): RateLimiter {
      const prefix = options.prefix ?? randomPrefix('rl');
      prefixes.push(prefix);
      // A generous timeout: a loaded test machine must not turn a slow answer into a fallback.
      return new RateLimiter({ localDenyCache: false, timeout: '10s', ...options, prefix, ...(redis && { redis }) });
    },
  };
}
