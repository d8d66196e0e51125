import { multiKeyGroups, scanEveryMaster } from '../../client/cluster.js';
import type { RedisLike } from '../../client/types.js';
import { escapeGlob } from './keys.js';

/**
 * Deletes every rate-limit key a limiter with `prefix` wrote (`<prefix>:rl:…`, the core's
 * layout), on every master, with SCAN (never KEYS) and UNLINK in batches grouped by slot. Glob
 * characters in the prefix are escaped, so another limiter's keys are never touched.
 *
 * Until the core offers `RateLimiter.resetAll()`, this is the one place an adapter knows the
 * core's key layout.
 */
export async function deleteLimiterKeys(redis: RedisLike, prefix: string): Promise<number> {
  let deleted = 0;
  for await (const keys of scanEveryMaster(redis, { match: `${escapeGlob(prefix)}:rl:*`, count: 1_000 })) {
    for (const group of multiKeyGroups(redis, keys)) deleted += await redis.unlink(...group);
  }
  return deleted;
}
