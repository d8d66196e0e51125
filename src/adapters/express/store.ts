import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { RedscaleError } from '../../common/errors.js';
import { durationSchema, parseOptions, prefixSchema, redisClientSchema } from '../../common/options.js';
import { RateLimiter } from '../../ratelimit/limiter.js';
import type { RateLimitResult } from '../../ratelimit/result.js';
import { fixedWindow } from '../../ratelimit/rules.js';

/** Options for {@link RedscaleStore}. */
export interface RedscaleStoreOptions {
  redis: RedisLike;
  /** Key namespace; use one per `rateLimit()` instance. Default `'redscale:erl'`. */
  prefix?: string;
  /**
   * When Redis fails: `'memory'` counts in this process until it is back, `'allow'` reports one
   * hit, `'deny'` throws (express-rate-limit then answers per its `passOnStoreError`). Default `'memory'`.
   */
  onRedisError?: 'memory' | 'allow' | 'deny';
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
}

const optionsSchema = z.strictObject({
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale:erl'),
  onRedisError: z.enum(['memory', 'allow', 'deny']).default('memory'),
  timeout: durationSchema().default(250),
});

/**
 * A store for express-rate-limit (v7 and v8): `rateLimit({ windowMs, limit, store: new
 * RedscaleStore({ redis }) })` works as with rate-limit-redis. One round trip per increment,
 * Cluster-safe keys, and Redis server time for the window. express-rate-limit decides; the store
 * counts (also past the limit), as its Store contract asks.
 */
export class RedscaleStore implements Store {
  /** Counts are shared through Redis, not kept per process. */
  readonly localKeys = false;
  /** The key namespace. */
  readonly prefix: string;
  readonly #options: z.output<typeof optionsSchema>;
  #limiter: RateLimiter | undefined;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RedscaleStoreOptions) {
    this.#options = parseOptions(optionsSchema, options, 'RedscaleStore');
    this.prefix = this.#options.prefix;
  }

  /** Called by express-rate-limit with its options; the window is `windowMs`. */
  init(options: Options): void {
    const { redis, prefix, onRedisError, timeout } = this.#options;
    this.#limiter = new RateLimiter({
      redis,
      prefix,
      // A pure counter: express-rate-limit compares the count with its own (maybe per-request) limit.
      limits: fixedWindow({ limit: Number.MAX_SAFE_INTEGER, window: options.windowMs }),
      onRedisError: onRedisError === 'memory' ? 'memory' : 'allow',
      timeout,
      localDenyCache: false,
    });
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    return this.#info(await this.#ready().peek(key));
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    return this.#info(await this.#ready().hit(key));
  }

  async decrement(key: string): Promise<void> {
    await this.#ready().refund(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.#ready().reset(key);
  }

  #ready(): RateLimiter {
    if (!this.#limiter) {
      throw new RedscaleError(
        'ERR_INVALID_OPTION',
        'redscale: RedscaleStore was used before express-rate-limit called init()',
      );
    }
    return this.#limiter;
  }

  #info(result: RateLimitResult): ClientRateLimitInfo {
    const counted = result.limits[0];
    if (!counted) {
      // Redis failed and no count exists: 'allow' reports a single hit, 'deny' fails the request.
      if (this.#options.onRedisError === 'deny' && result.error) throw result.error;
      return { totalHits: 1, resetTime: new Date(result.resetAt) };
    }
    return { totalHits: Math.max(1, counted.used), resetTime: new Date(counted.resetAt) };
  }
}
