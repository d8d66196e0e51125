import { addressOf, keyPrefixOf, mastersOf, multiKeyGroups } from '../client/cluster.js';
import { Budget, type RedisGate } from './gate.js';

const GLOB_SPECIALS = /[*?[\]\\]/g;

/**
 * Escapes glob characters (`* ? [ ] \`), for building a pattern from user input:
 * `cache.invalidatePattern(`user:${escapeGlob(name)}:*`)` deletes only that user's keys.
 */
export function escapeGlob(text: string): string {
  return text.replace(GLOB_SPECIALS, '\\$&');
}

/** One position of a compiled glob: `*`, or a test for one byte. */
type Token = { star: true } | { star: false; test: (byte: number) => boolean };

/**
 * Compiles a Redis glob (`*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`, with Redis' own edge cases: a
 * reversed range is swapped, an unclosed `[` takes the rest of the pattern) into a matcher over
 * the UTF-8 bytes of a string, exactly as Redis matches keys. Unlike a RegExp it never
 * backtracks exponentially: matching is O(pattern × text) at worst, so a hostile pattern on the
 * bus cannot stall the process.
 */
export function compileGlob(glob: string): (text: string) => boolean {
  const pattern = Buffer.from(glob, 'utf8');
  const tokens: Token[] = [];
  let i = 0;
  while (i < pattern.length) {
    const byte = pattern[i] as number;
    if (byte === 0x2a /* * */) {
      if (!tokens.at(-1)?.star) tokens.push({ star: true });
      i++;
    } else if (byte === 0x3f /* ? */) {
      tokens.push({ star: false, test: () => true });
      i++;
    } else if (byte === 0x5b /* [ */) {
      i++;
      const negate = pattern[i] === 0x5e; /* ^ */
      if (negate) i++;
      const singles: number[] = [];
      const ranges: Array<[number, number]> = [];
      for (;;) {
        const left = pattern.length - i;
        if (left <= 0) break; // unclosed: the class runs to the end of the pattern
        const c = pattern[i] as number;
        if (c === 0x5c /* \ */ && left >= 2) {
          singles.push(pattern[i + 1] as number);
          i += 2;
        } else if (c === 0x5d /* ] */) {
          i++;
          break;
        } else if (left >= 3 && pattern[i + 1] === 0x2d /* - */) {
          const a = c;
          const b = pattern[i + 2] as number;
          ranges.push(a <= b ? [a, b] : [b, a]);
          i += 3;
        } else {
          singles.push(c);
          i++;
        }
      }
      tokens.push({
        star: false,
        test: (x) => (singles.includes(x) || ranges.some(([a, b]) => x >= a && x <= b)) !== negate,
      });
    } else {
      const literal = byte === 0x5c /* \ */ && i + 1 < pattern.length ? (pattern[++i] as number) : byte;
      tokens.push({ star: false, test: (x) => x === literal });
      i++;
    }
  }
  return (text) => matchTokens(tokens, Buffer.from(text, 'utf8'));
}

function matchTokens(tokens: readonly Token[], text: Uint8Array): boolean {
  let t = 0;
  let s = 0;
  let starAt = -1;
  let starFrom = 0;
  while (s < text.length) {
    const token = tokens[t];
    if (token?.star) {
      starAt = t++;
      starFrom = s;
    } else if (token?.test(text[s] as number)) {
      t++;
      s++;
    } else if (starAt >= 0) {
      // Every other token takes exactly one byte, so retrying from the last star is enough.
      t = starAt + 1;
      s = ++starFrom;
    } else {
      return false;
    }
  }
  while (tokens[t]?.star) t++;
  return t === tokens.length;
}

/**
 * Deletes every key matching `match` — a full Redis glob, the cache's own prefix included and
 * escaped, without the client's `keyPrefix` — with SCAN on every master (never KEYS) and UNLINK in
 * batches of at most `batch` keys per hash slot. Each SCAN or UNLINK is one Redis call under a
 * fresh `timeoutMs` and its node's circuit breaker. Resolves how many keys were deleted.
 */
export async function unlinkMatching(
  gate: RedisGate,
  match: string,
  batch: number,
  timeoutMs: number,
): Promise<number> {
  const redis = gate.redis;
  const clientPrefix = keyPrefixOf(redis);
  // SCAN is not prefixed by ioredis: the client's keyPrefix is part of what Redis must match.
  const fullMatch = escapeGlob(clientPrefix) + match;
  let deleted = 0;
  for (const master of mastersOf(redis)) {
    const node = addressOf(master);
    let cursor = '0';
    do {
      const [next, found] = await gate.call('cache invalidate pattern scan', node, new Budget(timeoutMs), () =>
        master.scan(cursor, 'MATCH', fullMatch, 'COUNT', batch),
      );
      cursor = next;
      const keys = clientPrefix ? found.map((key) => key.slice(clientPrefix.length)) : found;
      for (const group of multiKeyGroups(redis, keys)) {
        for (let i = 0; i < group.length; i += batch) {
          const slice = group.slice(i, i + batch);
          deleted += await gate.call(
            'cache invalidate pattern unlink',
            gate.nodeOf(slice[0] as string),
            new Budget(timeoutMs),
            () => redis.unlink(...slice),
          );
        }
      }
    } while (cursor !== '0');
  }
  return deleted;
}

/** Keys per SCAN and per UNLINK of a pattern invalidation. */
const PATTERN_BATCH = 500;

/**
 * Deletes the cache's entries whose keys match `pattern` (relative to `prefix`), or with no
 * pattern everything in the namespace, tag versions included; resolves how many entries went.
 * Fill locks go first: a load of a matching key that is running now may have read the old data,
 * and must not store it (whether or not its key exists yet); loads that start later read anew.
 * Tag versions go last: a tag that comes back is newer than any entry written before it.
 */
export async function unlinkEntries(
  gate: RedisGate,
  prefix: string,
  pattern: string | undefined,
  timeoutMs: number,
): Promise<number> {
  const escaped = escapeGlob(prefix);
  const locks = pattern === undefined ? '*' : `{*}:${pattern}`;
  await unlinkMatching(gate, `${escaped}:cl:${locks}`, PATTERN_BATCH, timeoutMs);
  const deleted = await unlinkMatching(gate, `${escaped}:c:${pattern ?? '*'}`, PATTERN_BATCH, timeoutMs);
  if (pattern === undefined) await unlinkMatching(gate, `${escaped}:ct:*`, PATTERN_BATCH, timeoutMs);
  return deleted;
}
