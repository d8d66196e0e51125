import type { ThrottlerStorage } from '@nestjs/throttler';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import { isRedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { InvalidOptionError, type RedscaleError } from '../../common/errors.js';
import {
  durationSchema,
  MAX_DURATION_MS,
  parseOptions,
  positiveInt,
  prefixSchema,
  redisClientSchema,
} from '../../common/options.js';
import { RateLimiter } from '../../ratelimit/limiter.js';
import type { RateLimitResult } from '../../ratelimit/result.js';
import { fixedWindow, slidingWindow } from '../../ratelimit/rules.js';
import { keySegment } from '../shared/keys.js';

/** Options for {@link RedscaleThrottlerStorage}. */
export interface RedscaleThrottlerStorageOptions {
  /** The client: any ioredis `Redis` or `Cluster`. */
  redis: RedisLike;
  /** Key namespace. Default `'redscale:throttler'`. */
  prefix?: string;
  /**
   * How each throttler counts. `'fixed-window'`: at most `limit` hits per window (see `anchor`);
   * `'sliding-window'`: a weighted two-window estimate over epoch-aligned windows (no burst of
   * 2 × limit across a window boundary). Default `'fixed-window'`.
   */
  algorithm?: 'fixed-window' | 'sliding-window';
  /**
   * Fixed windows only: `'first-hit'` starts a client's window at its first hit and lasts `ttl`
   * (as @nestjs/throttler and @nest-lab/throttler-storage-redis count, so `X-RateLimit-Reset` on
   * a first hit is the ttl); `'clock'` aligns windows to the epoch. Default `'first-hit'`.
   */
  anchor?: 'first-hit' | 'clock';
  /**
   * How a refusal blocks when `blockDuration` is above 0: `'exact'` blocks for exactly
   * `blockDuration`, then counts afresh (the peers' semantics); `'until-room'` blocks for
   * `blockDuration` and at least until the limit has room again. Blocked requests are never
   * counted. Default `'exact'`.
   */
  blockMode?: 'exact' | 'until-room';
  /**
   * Remember refusals in this process and answer them without a round trip until they end.
   * Off by default: an admin who deletes a client's keys in Redis (an unblock) must see it take
   * effect at once on every instance. Default `false`.
   */
  localDenyCache?: false | { maxEntries?: number };
  /** When Redis fails: in-memory counting until it is back, let requests through, or refuse them. Default `'memory'`. */
  onRedisError?: 'memory' | 'allow' | 'deny';
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
  /** Called with every Redis failure the storage absorbed (for logs and metrics). */
  onError?: (error: RedscaleError) => void;
}

/** What `ThrottlerStorage.increment` resolves (as @nestjs/throttler v6 declares it). */
export interface ThrottlerStorageRecord {
  /** Hits counted in the window (on a refusal, at least `limit + 1`: the refused hit). */
  totalHits: number;
  /** Seconds until the window resets. */
  timeToExpire: number;
  /** Whether the request is refused (over the limit, or blocked). */
  isBlocked: boolean;
  /** Seconds until the block ends (0 when not blocked). */
  timeToBlockExpire: number;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

const optionsSchema = z
  .strictObject({
    redis: redisClientSchema,
    prefix: prefixSchema.default('redscale:throttler'),
    algorithm: z.enum(['fixed-window', 'sliding-window']).default('fixed-window'),
    anchor: z.enum(['first-hit', 'clock']).optional(),
    blockMode: z.enum(['exact', 'until-room']).default('exact'),
    localDenyCache: z
      .union([z.literal(false), z.strictObject({ maxEntries: positiveInt().optional() })])
      .default(false),
    onRedisError: z.enum(['memory', 'allow', 'deny']).default('memory'),
    timeout: durationSchema().default(250),
    onError: fn<(error: RedscaleError) => void>().optional(),
  })
  .superRefine((options, ctx) => {
    if (options.anchor && options.algorithm !== 'fixed-window') {
      ctx.addIssue({ code: 'custom', path: ['anchor'], message: "no anchor unless algorithm is 'fixed-window'" });
    }
  });

type ResolvedOptions = z.output<typeof optionsSchema>;

const WHERE = 'RedscaleThrottlerStorage';

/**
 * A drop-in `ThrottlerStorage` for @nestjs/throttler v6, in Redis (standalone or Cluster):
 *
 * ```ts
 * ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 100 }], storage: new RedscaleThrottlerStorage(redis) })
 * ```
 *
 * Counts as @nestjs/throttler's own storage and @nest-lab/throttler-storage-redis do by default:
 * a window that starts at a client's first hit and lasts `ttl`; past the limit, a block of exactly
 * `blockDuration` (the guard defaults it to the ttl) during which requests are refused and not
 * counted, after which counting starts afresh; with `blockDuration: 0`, refusals until the window
 * has room; `limit: 0` refuses everything (a 429, not an error). Every answer comes from Redis:
 * deleting a client's keys there unblocks it at once. One round trip per throttler per request.
 * `ttl` and `blockDuration` arrive in milliseconds; `timeToExpire` and `timeToBlockExpire` go back
 * in seconds, as the guard expects.
 */
export class RedscaleThrottlerStorage implements ThrottlerStorage {
  readonly #options: ResolvedOptions;
  // One limiter per throttler configuration; a few per app, unless ttl or limit vary per request.
  readonly #limiters = new LRUCache<string, RateLimiter>({ max: 1_000 });

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(redisOrOptions: RedisLike | RedscaleThrottlerStorageOptions) {
    const options = isRedisLike(redisOrOptions) ? { redis: redisOrOptions } : redisOrOptions;
    this.#options = parseOptions(optionsSchema, options, WHERE);
  }

  /**
   * Counts a request for `key` under one throttler and says whether it is refused. Called by
   * @nestjs/throttler's guard once per throttler per request.
   *
   * @throws InvalidOptionError when `ttl` is not a duration of at least 1 ms.
   */
  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const windowMs = windowOf(ttl, throttlerName);
    const blockMs = Number.isFinite(blockDuration) && blockDuration > 0 ? Math.ceil(blockDuration) : 0;
    // The guard compares whole hits with the limit: 2.5 admits 2, and anything below 1 none.
    const whole = Number.isFinite(limit) ? Math.floor(limit) : Number.NaN;
    if (!(whole >= 1)) return refuseEverything(windowMs, blockMs);
    const result = await this.#limiter(windowMs, whole, blockMs, String(throttlerName)).consume(String(key));
    return toRecord(result, whole);
  }

  #limiter(windowMs: number, limit: number, blockMs: number, throttlerName: string): RateLimiter {
    const id = `${throttlerName}\n${windowMs}\n${limit}\n${blockMs}`;
    let limiter = this.#limiters.get(id);
    if (!limiter) {
      const { redis, prefix, algorithm, anchor, blockMode, localDenyCache, onRedisError, timeout, onError } =
        this.#options;
      limiter = new RateLimiter({
        redis,
        // Any throttler name works in a key: braces would start a Cluster hash tag, so they are encoded.
        prefix: `${prefix}:${keySegment(throttlerName)}`,
        limits:
          algorithm === 'fixed-window'
            ? fixedWindow({ limit, window: windowMs, anchor: anchor ?? 'first-hit' })
            : slidingWindow({ limit, window: windowMs }),
        blockFor: blockMs,
        blockMode,
        localDenyCache,
        onRedisError,
        timeout,
        ...(onError && { onError }),
      });
      this.#limiters.set(id, limiter);
    }
    return limiter;
  }
}

function windowOf(ttl: number, throttlerName: string): number {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 1 || ttl > MAX_DURATION_MS) {
    throw new InvalidOptionError(
      'ttl',
      ttl,
      `milliseconds from 1 to ${MAX_DURATION_MS} (use seconds(n) or minutes(n) from @nestjs/throttler)`,
      `the "${throttlerName}" throttler (${WHERE})`,
    );
  }
  return Math.ceil(ttl);
}

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1_000));

/**
 * `limit: 0` (or below) refuses every request, as the peers do: blocked for `blockDuration`, or
 * for the ttl when there is no block. Nothing is counted, so Redis is not asked.
 */
function refuseEverything(windowMs: number, blockMs: number): ThrottlerStorageRecord {
  return {
    totalHits: 1,
    timeToExpire: seconds(windowMs),
    isBlocked: true,
    timeToBlockExpire: Math.max(1, seconds(blockMs > 0 ? blockMs : windowMs)),
  };
}

function toRecord(result: RateLimitResult, limit: number): ThrottlerStorageRecord {
  const counted = result.limits[0];
  const timeToExpire = seconds((counted?.resetAt ?? result.resetAt) - result.decidedAt);
  if (result.allowed) {
    // Without a count (Redis failed and the policy let it through), say one hit.
    return { totalHits: Math.max(1, counted?.used ?? 1), timeToExpire, isBlocked: false, timeToBlockExpire: 0 };
  }
  return {
    // The guard reports the refused hit too (its error messages show `limit + 1`).
    totalHits: Math.max(counted?.used ?? 0, limit + 1),
    timeToExpire,
    isBlocked: true,
    timeToBlockExpire: Math.max(1, seconds(result.retryAfter)),
  };
}
