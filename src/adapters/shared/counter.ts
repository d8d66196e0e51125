import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { InvalidOptionError, type RedscaleError } from '../../common/errors.js';
import { durationSchema, MAX_DURATION_MS } from '../../common/options.js';
import { RateLimiter } from '../../ratelimit/limiter.js';
import type { RateLimitResult } from '../../ratelimit/result.js';
import { fixedWindow, type WhenExceeded } from '../../ratelimit/rules.js';

/**
 * What a counting store does when Redis fails or does not answer in time:
 * - `'error'`: pass the error to the framework, whose own option decides (express-rate-limit's
 *   `passOnStoreError`, @fastify/rate-limit's `skipOnError`) — what the peers' Redis stores do;
 * - `'memory'`: count in this process until Redis answers again (N instances admit up to N ×);
 * - `'allow'`: report a single hit, so the request passes.
 */
export type CounterErrorPolicy = 'error' | 'memory' | 'allow';

/** Where a counting store's window starts: at the client's first hit (the peers'), or on the clock's boundaries. */
export type CounterAnchor = 'first-hit' | 'clock';

/** Options shared by the Express and Fastify counting stores. */
export interface CounterOptions {
  redis: RedisLike;
  prefix: string;
  anchor: CounterAnchor;
  onRedisError: CounterErrorPolicy;
  timeout: Duration;
  onError: ((error: RedscaleError) => void) | undefined;
}

/** What the stores count: hits in the current window, and how long until it ends. */
export interface Count {
  totalHits: number;
  /** Milliseconds until the window ends (from the clock that decided). */
  resetInMs: number;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

/** zod fields shared by the stores' option schemas. */
export const counterFields = {
  anchor: z.enum(['first-hit', 'clock']).default('first-hit'),
  onRedisError: z.enum(['error', 'memory', 'allow']).default('error'),
  timeout: durationSchema().default(250),
  onError: fn<(error: RedscaleError) => void>().optional(),
};

/**
 * What a hit past `limit` does to a first-hit window (@fastify/rate-limit's `continueExceeding`
 * is `'restart'`, its `exponentialBackoff` is `'backoff'`); without it the window is kept.
 */
export interface CounterExceeded {
  /** The framework's limit (`max`): a hit that leaves the count above it changes the window. */
  limit: number;
  mode: Exclude<WhenExceeded, 'keep'>;
}

/**
 * A pure counter over the core limiter: one fixed window per client, counted with `hit()` (which
 * keeps counting past any limit, as express-rate-limit and @fastify/rate-limit expect: they
 * compare the count with their own, maybe per-request, limit). One instance per window length
 * (and, with `exceeded`, per limit: the keys are the same, so counts carry across them).
 */
export class WindowCounter {
  readonly #options: CounterOptions;
  readonly #limiter: RateLimiter;

  /** @throws InvalidOptionError when `windowMs` is not a window length. */
  constructor(options: CounterOptions, windowMs: number, where: string, exceeded?: CounterExceeded) {
    this.#options = options;
    if (!Number.isInteger(windowMs) || windowMs < 1 || windowMs > MAX_DURATION_MS) {
      throw new InvalidOptionError(
        'windowMs',
        windowMs,
        `a whole number of milliseconds from 1 to ${MAX_DURATION_MS} (a window of 0 would never count anything)`,
        where,
      );
    }
    this.#limiter = new RateLimiter({
      redis: options.redis,
      prefix: options.prefix,
      limits: fixedWindow({
        // A limit of 0 refuses everything: a first hit over it restarts what it starts anyway.
        limit: exceeded ? Math.max(1, exceeded.limit) : Number.MAX_SAFE_INTEGER,
        window: windowMs,
        anchor: options.anchor,
        ...(exceeded && { whenExceeded: exceeded.mode }),
      }),
      // 'error' and 'allow' both need the failure reported, not answered: the store decides.
      onRedisError: options.onRedisError === 'memory' ? 'memory' : 'allow',
      timeout: options.timeout,
      // A count the framework compares itself: never answer from memory what Redis might contradict.
      localDenyCache: false,
      ...(options.onError && { onError: options.onError }),
    });
  }

  /** Counts one hit. Rejects only under the `'error'` policy, with the Redis error. */
  async hit(key: string): Promise<Count> {
    const result = await this.#limiter.hit(key);
    return this.#count(result) ?? { totalHits: 1, resetInMs: result.windowMs };
  }

  /** The current count, `undefined` when nothing is counted. Rejects only under the `'error'` policy. */
  async peek(key: string): Promise<Count | undefined> {
    const count = this.#count(await this.#limiter.peek(key));
    return count && count.totalHits > 0 ? count : undefined;
  }

  /** Gives one hit back. Never rejects: a Redis failure is reported to `onError` (by the core) and dropped. */
  async refund(key: string): Promise<void> {
    await this.#limiter.refund(key).catch(ignore);
  }

  /** Forgets the client's count. Never rejects: a Redis failure is reported to `onError` and dropped. */
  async reset(key: string): Promise<void> {
    await this.#limiter.reset(key).catch(ignore);
  }

  /** Forgets every client's count under the prefix. Never rejects: a Redis failure is reported to `onError`. */
  async resetAll(): Promise<void> {
    await this.#limiter.resetAll().catch(ignore);
  }

  /**
   * The count in a result, `undefined` when Redis failed and no count exists. Under `'error'`
   * the failure is thrown for the framework: the client's own error when there is one (what the
   * peers' Redis stores pass on, so error pages stay the same), else redscale's (a timeout).
   */
  #count(result: RateLimitResult): Count | undefined {
    const counted = result.limits[0];
    if (!counted) {
      if (this.#options.onRedisError === 'error' && result.error) throw result.error.cause ?? result.error;
      return undefined;
    }
    return { totalHits: counted.used, resetInMs: Math.max(0, counted.resetAt - result.decidedAt) };
  }
}

// The core already passed the failure to `onError`; the store's contract is not to reject.
const ignore = (): void => {};
