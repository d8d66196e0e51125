import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { Cache, type CacheOptions, type CreateClientOptions, createClient, type RedisLike } from '../../src/index.js';
import type { CommandLog } from '../harness/command-counter.js';
import { deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/** Where a cache suite runs: a topology, and whether the client has an ioredis `keyPrefix`. */
export type CacheTarget = Topology | 'standalone+keyPrefix' | 'cluster+keyPrefix';

/** Every target the cache's contract suites run on. */
export const CACHE_TARGETS: CacheTarget[] = ['standalone', 'cluster', 'standalone+keyPrefix', 'cluster+keyPrefix'];

/**
 * A client for a target, with redscale's defaults. The keyPrefix variants carry `{` `}`-free
 * prefixes that move every key (and every sharded channel) to another hash slot than the cache
 * computes without it: exactly what broke slot grouping and the bus before.
 */
export function connectTarget(target: CacheTarget, options: CreateClientOptions = {}): RedisLike {
  const cluster = target.startsWith('cluster');
  const keyPrefix = target.endsWith('keyPrefix') ? 'kp-test:' : undefined;
  if (cluster) {
    return createClient({
      ...options,
      nodes: inject('clusterNodes'),
      ...(keyPrefix && { clusterOptions: { ...options.clusterOptions, keyPrefix } }),
    });
  }
  return createClient({
    ...options,
    url: inject('redisUrl'),
    ...(keyPrefix && { redisOptions: { ...options.redisOptions, keyPrefix } }),
  });
}

/** Caches on one target with fresh prefixes; closes them and deletes their keys afterwards. */
export function cacheFactory(target: CacheTarget) {
  const redis: RedisLike = connectTarget(target);
  const made: Array<{ cache: Cache; redis: RedisLike; prefix: string }> = [];
  afterAll(async () => {
    for (const { cache, prefix } of made) {
      await cache.close();
      await deletePrefix(redis, prefix);
    }
    for (const entry of made) if (entry.redis !== redis) entry.redis.disconnect();
    redis.disconnect();
  });
  return {
    redis,
    /**
     * A cache; pass `separateClient` to act as another instance (its own connections and bus).
     * Its `timeout` is 2 s unless given: these suites prove semantics on a shared, loaded machine,
     * where 250 ms for all of a call's Redis steps is sometimes not enough; the tests about
     * timeouts set their own.
     */
    async make(options: Omit<CacheOptions, 'redis'> = {}, separateClient = false): Promise<Cache> {
      const prefix = options.prefix ?? randomPrefix('cache');
      const client = separateClient ? connectTarget(target) : redis;
      const cache = new Cache({ timeout: '2s', ...options, prefix, redis: client });
      made.push({ cache, redis: client, prefix });
      await cache.whenReady({ timeout: '10s' });
      return cache;
    },
  };
}

/** A loader that counts its calls and can be slowed down or made to fail. */
export function countingLoader<T>(value: T, options: { delayMs?: number; fail?: () => boolean } = {}) {
  const loader = async () => {
    loader.calls++;
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    if (options.fail?.()) throw new Error(`load failed (call ${loader.calls})`);
    return value;
  };
  loader.calls = 0;
  return loader;
}

const HOUSEKEEPING = new Set(['info', 'cluster', 'hello', 'auth', 'select', 'client', 'readonly']);

/**
 * Like the harness' `countCommands`, and also leaves out the bus' heartbeats (a PUBLISH or
 * SPUBLISH whose message is `{"v":1,"i":…,"h":…}`): every cache alive in the process sends one
 * per `heartbeat`, whatever the test is doing, and they are not the operation under test.
 */
export async function countCommands(run: () => Promise<unknown>): Promise<CommandLog> {
  const original = Redis.prototype.sendCommand;
  const names: string[] = [];
  Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
    const text = String(command.args[1] ?? '');
    const heartbeat = /^s?publish$/.test(command.name) && /^\{"v":\d+,"i":"[^"]+","h":\d+\}$/.test(text);
    if (!HOUSEKEEPING.has(command.name) && !heartbeat) names.push(command.name);
    return original.call(this, command, ...rest);
  } as typeof original;
  try {
    await run();
  } finally {
    Redis.prototype.sendCommand = original;
  }
  return { count: names.length, names };
}

export { randomPrefix };
