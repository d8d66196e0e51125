import type { Cluster, Redis } from 'ioredis';

/**
 * Any ioredis client redscale can work with: a standalone `Redis` (including Sentinel-managed)
 * or a `Cluster`. Pass the one your service already has, or make one with `createClient()`.
 */
export type RedisLike = Redis | Cluster;

/** True when `redis` is an ioredis `Cluster`. */
export function isCluster(redis: RedisLike): redis is Cluster {
  return redis.isCluster === true;
}

/**
 * Recognises an ioredis client (v5 or v6, standalone or Cluster) without importing ioredis'
 * classes, so a client from another copy of ioredis in `node_modules` is accepted too.
 */
export function isRedisLike(value: unknown): value is RedisLike {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.defineCommand === 'function' && typeof candidate.evalsha === 'function';
}
