import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterEach, beforeEach, inject } from 'vitest';
import { type CreateClientOptions, createClient, type RedisLike, scanEveryMaster } from '../../src/index.js';

/** Which Redis a contract suite runs on. */
export type Topology = 'standalone' | 'cluster';

/** A random key prefix, so tests sharing one Redis never see each other's keys. */
export function randomPrefix(label = 't'): string {
  return `rs-test:${label}:${randomBytes(6).toString('hex')}`;
}

/** Connection errors are expected in tests that kill servers; they are asserted where they matter. */
export const quiet = (): void => {};

/** A client for the shared standalone Redis or the shared Cluster, with redscale's defaults. */
export function connect(topology: Topology = 'standalone', options: CreateClientOptions = {}): RedisLike {
  return topology === 'cluster'
    ? createClient({ ...options, nodes: inject('clusterNodes') })
    : createClient({ ...options, url: inject('redisUrl') });
}

/** A plain ioredis client with ioredis' own defaults, as a user would construct it. */
export function plainClient(topology: Topology = 'standalone'): Redis | Cluster {
  return topology === 'cluster' ? new Cluster(inject('clusterNodes')) : new Redis(inject('redisUrl'));
}

/** Deletes every key under `prefix` (SCAN on every master, never KEYS, never FLUSH). */
export async function deletePrefix(redis: RedisLike, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of scanEveryMaster(redis, { match: `${prefix}*` })) {
    for (const key of keys) deleted += await redis.unlink(key);
  }
  return deleted;
}

/** Counts keys under `prefix` across every master. */
export async function countKeys(redis: RedisLike, prefix: string): Promise<number> {
  let count = 0;
  for await (const keys of scanEveryMaster(redis, { match: `${prefix}*` })) count += keys.length;
  return count;
}

/**
 * Collects the unhandled rejections raised during each test of the calling file, so a test can
 * assert that a dead Redis left none behind: `expect(rejections.list).toEqual([])`.
 */
export function unhandledRejections(): { readonly list: unknown[] } {
  const state = { list: [] as unknown[] };
  const listener = (reason: unknown) => state.list.push(reason);
  beforeEach(() => {
    state.list = [];
    process.on('unhandledRejection', listener);
  });
  afterEach(() => {
    process.off('unhandledRejection', listener);
  });
  return state;
}
