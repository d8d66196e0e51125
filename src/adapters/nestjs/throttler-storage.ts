import type { ThrottlerStorage } from '@nestjs/throttler';
import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import { isRedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { durationSchema, parseOptions, prefixSchema, redisClientSchema } from '../../common/options.js';
import { RateLimiter } from '../../ratelimit/limiter.js';
import { fixedWindow, slidingWindow } from '../../ratelimit/rules.js';

/** Options for {@link RedscaleThrottlerStorage}. */
export interface RedscaleThrottlerStorageOptions {
  redis: RedisLike;
  /** Key namespace. Default `'redscale:throttler'`. */
  prefix?: string;
  /** How each throttler counts. Default `'sliding-window'` (no boundary bursts; `'fixed-window'` is cheapest). */
  algorithm?: 'fixed-window' | 'sliding-window';
  /** When Redis fails: in-memory counting until it is back, let requests through, or refuse them. Default `'memory'`. */
  onRedisError?: 'memory' | 'allow' | 'deny';
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
}

/** What `ThrottlerStorage.increment` resolves (as @nestjs/throttler v6 declares it). */
export interface ThrottlerStorageRecord {
  totalHits: number;
  /** Seconds until the window resets. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until the block ends. */
  timeToBlockExpire: number;
}

const optionsSchema = z.strictObject({
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale:throttler'),
  algorithm: z.enum(['fixed-window', 'sliding-window']).default('sliding-window'),
  onRedisError: z.enum(['memory', 'allow', 'deny']).default('memory'),
  timeout: durationSchema().default(250),
});

/**
 * A drop-in `ThrottlerStorage` for @nestjs/throttler v6, in Redis (standalone or Cluster):
 *
 * ```ts
 * ThrottlerModule.forRoot({ throttlers: [{ ttl: 60_000, limit: 100 }], storage: new RedscaleThrottlerStorage(redis) })
 * ```
 *
 * One round trip per throttler per request, Redis server time, and blocking that ends cleanly:
 * a throttler that refuses blocks the client for `blockDuration` (Nest defaults it to the ttl)
 * and at least until the limit has room again, without counting the blocked requests. Refusals
 * are remembered in the process, so a blocked client costs Redis nothing until the block ends.
 * `ttl` and `blockDuration` arrive in milliseconds; `timeToExpire` and `timeToBlockExpire` go
 * back in seconds, as the guard expects.
 */
export class RedscaleThrottlerStorage implements ThrottlerStorage {
  readonly #options: z.output<typeof optionsSchema>;
  readonly #limiters = new Map<string, RateLimiter>();

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(redisOrOptions: RedisLike | RedscaleThrottlerStorageOptions) {
    const options = isRedisLike(redisOrOptions) ? { redis: redisOrOptions } : redisOrOptions;
    this.#options = parseOptions(optionsSchema, options, 'RedscaleThrottlerStorage');
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const result = await this.#limiter(ttl, limit, blockDuration, throttlerName).consume(key);
    const counted = result.limits[0];
    const timeToExpire = Math.ceil(Math.max(0, (counted?.resetAt ?? result.resetAt) - result.decidedAt) / 1_000);
    if (result.allowed) {
      return { totalHits: counted?.used ?? 1, timeToExpire, isBlocked: false, timeToBlockExpire: 0 };
    }
    return {
      totalHits: Math.max(counted?.used ?? 0, limit + 1),
      timeToExpire,
      isBlocked: true,
      timeToBlockExpire: Math.max(1, Math.ceil(result.retryAfter / 1_000)),
    };
  }

  /** One limiter per throttler configuration (the guard passes it on every call). */
  #limiter(ttl: number, limit: number, blockDuration: number, throttlerName: string): RateLimiter {
    const id = `${throttlerName}|${ttl}|${limit}|${blockDuration}`;
    let limiter = this.#limiters.get(id);
    if (!limiter) {
      const { redis, prefix, algorithm, onRedisError, timeout } = this.#options;
      const rule = algorithm === 'fixed-window' ? fixedWindow : slidingWindow;
      limiter = new RateLimiter({
        redis,
        prefix: `${prefix}:${throttlerName}`,
        limits: rule({ limit, window: ttl, name: throttlerName.replace(/[^\w.:/-]/g, '_').slice(0, 64) || 'default' }),
        blockFor: blockDuration,
        onRedisError,
        timeout,
      });
      this.#limiters.set(id, limiter);
    }
    return limiter;
  }
}
