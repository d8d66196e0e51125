import { multiKeyGroups, scanEveryMaster } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';

const GLOB_SPECIALS = /[*?[\]\\]/g;

/**
 * Escapes glob characters (`* ? [ ] \`), for building a pattern from user input:
 * `cache.invalidatePattern(`user:${escapeGlob(name)}:*`)` deletes only that user's keys.
 */
export function escapeGlob(text: string): string {
  return text.replace(GLOB_SPECIALS, '\\$&');
}

/** The same matching as Redis' glob (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`), as a RegExp for L1. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (char === '\\' && i + 1 < glob.length) source += escapeRegExp(glob[++i] as string);
    else if (char === '*') source += '[\\s\\S]*';
    else if (char === '?') source += '[\\s\\S]';
    else if (char === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) {
        source += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('^')) body = `^${body.slice(1).replace(/\\/g, '\\\\')}`;
      else body = body.replace(/\\/g, '\\\\');
      source += `[${body}]`;
      i = end;
    } else source += escapeRegExp(char);
  }
  return new RegExp(`^${source}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Deletes every key matching `match` (a full Redis glob, prefix included): SCAN on every master
 * with MATCH and COUNT `batch`, then UNLINK in groups of at most `batch` keys (per hash slot on
 * Cluster), so
 * no single command holds Redis for long. Never KEYS. Resolves how many keys were deleted.
 */
export async function unlinkMatching(redis: RedisLike, match: string, batch: number): Promise<number> {
  let deleted = 0;
  for await (const keys of scanEveryMaster(redis, { match, count: batch })) {
    for (const group of multiKeyGroups(redis, keys)) {
      for (let i = 0; i < group.length; i += batch) deleted += await redis.unlink(...group.slice(i, i + batch));
    }
  }
  return deleted;
}
