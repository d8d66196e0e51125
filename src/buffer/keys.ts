import { slotOf } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { hashTag } from '../common/keys.js';

/** The Redis keys of one shard of a write buffer. Both share one hash tag, so one script can move entries between them. */
export interface ShardKeys {
  /** 0-based shard number. */
  index: number;
  /** The stream of items not yet committed. */
  stream: string;
  /** The stream of items whose flush kept failing. */
  deadLetters: string;
}

/** The consumer group every shard's stream has (one group per stream). */
export const GROUP = 'redscale';

const SLOTS = 16_384;
const MAX_TRIES = 100_000;

/**
 * The keys of every shard: `<prefix>:buffer:{<name>/<shard>}` and `…:dead`. On a Cluster the
 * shards must land on different masters for throughput to grow with them, yet every producer and
 * consumer must compute the same keys without asking the Cluster (its slot map changes). So each
 * shard's hash tag is chosen, deterministically, to fall near the middle of its own 1/n of the
 * slot space: with Redis' default layout (each master owns one contiguous, equal range) and
 * `shards` equal to the number of masters, each master gets one shard.
 */
export function shardKeys(redis: RedisLike, prefix: string, name: string, shards: number): ShardKeys[] {
  return Array.from({ length: shards }, (_, index) => {
    const stream = shardStream(redis, prefix, name, index, shards);
    return { index, stream, deadLetters: `${stream}:dead` };
  });
}

function shardStream(redis: RedisLike, prefix: string, name: string, index: number, shards: number): string {
  const keyOf = (attempt: number) =>
    `${prefix}:buffer:${hashTag(attempt === 0 ? `${name}/${index}` : `${name}/${index}.${attempt}`)}`;
  if (shards === 1) return keyOf(0);
  const center = ((index + 0.5) * SLOTS) / shards;
  const halfWidth = Math.max(0.5, SLOTS / shards / 4);
  for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
    const key = keyOf(attempt);
    // The slot as Redis sees the key: a client keyPrefix is part of it.
    if (Math.abs(slotOf(redis, key) - center) <= halfWidth) return key;
  }
  // Only a client keyPrefix that itself holds a {hash tag} gets here: every key has its slot.
  return keyOf(0);
}
