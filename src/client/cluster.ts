import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import { isCluster, type RedisLike } from './types.js';

/**
 * The connections that hold data: every master of a Cluster, or the client itself.
 * Keyless commands (SCAN, INFO, SCRIPT FLUSH…) must run on each of these.
 */
export function mastersOf(redis: RedisLike): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/**
 * `host:port` of a connection, as Cluster nodes are named. A Sentinel-managed client is connected
 * wherever the sentinels last said the primary is (its `host`/`port` options are unused): the
 * address of its live connection, or `sentinel:<name>` while it has none.
 */
export function addressOf(node: Redis): string {
  const { host, port, path, sentinels, name } = node.options;
  if (sentinels?.length) {
    const stream = node.stream as { remoteAddress?: string; remotePort?: number } | undefined;
    return stream?.remoteAddress && stream.remotePort
      ? `${stream.remoteAddress}:${stream.remotePort}`
      : `sentinel:${name ?? ''}`;
  }
  return path ? path : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

/** The Cluster hash slot of a key (0–16383), honouring `{hash tags}`. */
export function keySlot(key: string): number {
  return calculateSlot(key);
}

/**
 * The hash slot Redis puts `key` in when this client sends it: the client's ioredis `keyPrefix`
 * (if any) is part of the key as Redis sees it, and so of its slot.
 */
export function slotOf(redis: RedisLike, key: string): number {
  return calculateSlot(keyPrefixOf(redis) + key);
}

/**
 * `host:port` of the Cluster master that owns `key` as this client sends it (prefix included), by
 * the client's current slot map; `'standalone'` for a standalone client and `'unknown'` before a
 * Cluster client has a slot map. Per-node state (circuit breakers, server clocks) is keyed by it.
 */
export function nodeOf(redis: RedisLike, key: string): string {
  if (!isCluster(redis)) return 'standalone';
  return redis.slots[slotOf(redis, key)]?.[0] ?? 'unknown';
}

/**
 * Splits keys into groups one multi-key command can take: by hash slot on a Cluster (so nothing
 * spans slots, CROSSSLOT), all together on a standalone Redis. Slots are computed on the keys as
 * Redis sees them, the client's `keyPrefix` included.
 */
export function multiKeyGroups(redis: RedisLike, keys: Iterable<string>): string[][] {
  if (!isCluster(redis)) {
    const all = [...keys];
    return all.length ? [all] : [];
  }
  return groupBySlot(keys, keyPrefixOf(redis));
}

/**
 * Groups keys by hash slot, so a multi-key command never spans slots (CROSSSLOT) on Cluster.
 * Pass the client's `keyPrefix` when it has one: the slot is that of the prefixed key.
 */
export function groupBySlot(keys: Iterable<string>, keyPrefix = ''): string[][] {
  const groups = new Map<number, string[]>();
  for (const key of keys) {
    const slot = calculateSlot(keyPrefix + key);
    const group = groups.get(slot);
    if (group) group.push(key);
    else groups.set(slot, [key]);
  }
  return [...groups.values()];
}

/** Options for {@link scanEveryMaster}. */
export interface ScanOptions {
  /** Glob for SCAN MATCH, including any prefix (without the client's own `keyPrefix`). */
  match: string;
  /** SCAN COUNT hint per call. Default 500. */
  count?: number;
}

/**
 * Yields batches of keys matching `match` from every master, using SCAN (never KEYS), so Redis
 * is never blocked for the whole keyspace. The client's `keyPrefix`, if any, is added to the
 * pattern and removed from the keys, so they can be passed back to the same client.
 */
export async function* scanEveryMaster(redis: RedisLike, options: ScanOptions): AsyncGenerator<string[]> {
  const clientPrefix = keyPrefixOf(redis);
  const match = clientPrefix + options.match;
  const count = options.count ?? 500;
  for (const node of mastersOf(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', count);
      cursor = next;
      if (keys.length) yield clientPrefix ? keys.map((key) => key.slice(clientPrefix.length)) : keys;
    } while (cursor !== '0');
  }
}

/** The client's ioredis `keyPrefix`, which it adds to every key (and sharded channel) it sends. */
export function keyPrefixOf(redis: RedisLike): string {
  return redis.options.keyPrefix ?? '';
}

/**
 * A `{hash tag}` whose keys live on the given Cluster master, so a script can be sent to each
 * master on purpose (health probes, script warm-up). On a standalone client any tag will do.
 */
export function hashTagOnNode(redis: RedisLike, node: Redis, base = 'redscale'): string {
  if (!isCluster(redis)) return `{${base}}`;
  const owner = addressOf(node);
  for (let i = 0; i < 10_000; i++) {
    const tag = `${base}-${i}`;
    const nodes = redis.slots[calculateSlot(tag)];
    if (nodes?.[0] === owner) return `{${tag}}`;
  }
  throw new Error(`redscale: no hash slot is owned by Cluster node ${owner}`);
}
