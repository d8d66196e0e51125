import type { ClientRateLimitInfo, Options, Store } from 'express-rate-limit';
import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { InvalidOptionError, type RedscaleError } from '../../common/errors.js';
import { parseOptions, prefixSchema, redisClientSchema } from '../../common/options.js';
import {
  type CounterAnchor,
  type CounterErrorPolicy,
  type CounterOptions,
  counterFields,
  WindowCounter,
} from '../shared/counter.js';

/** Options for {@link RedscaleStore}. */
export interface RedscaleStoreOptions {
  /** The client: any ioredis `Redis` or `Cluster`. */
  redis: RedisLike;
  /** Key namespace; use one per `rateLimit()` instance. Default `'redscale:erl'`. */
  prefix?: string;
  /**
   * Where a client's window starts: `'first-hit'` (its first request, then `windowMs` long — as
   * express-rate-limit's MemoryStore and rate-limit-redis count) or `'clock'` (windows aligned to
   * the epoch, the same boundaries for every client). Default `'first-hit'`.
   */
  anchor?: CounterAnchor;
  /**
   * When Redis fails or does not answer within `timeout`: `'error'` passes the error to
   * express-rate-limit, whose `passOnStoreError` decides (as with rate-limit-redis);
   * `'memory'` counts in this process until Redis is back; `'allow'` reports one hit. `'deny'`
   * is the 0.1 name of `'error'`. Default `'error'`.
   */
  onRedisError?: CounterErrorPolicy | 'deny';
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
  /**
   * Called with every Redis failure the store absorbed: from `decrement`, `resetKey`, `resetAll`
   * and `get`, which never reject because Redis is away (express-rate-limit 7 does not catch a
   * rejected `decrement`), and from `increment` under the `'memory'` and `'allow'` policies.
   */
  onError?: (error: RedscaleError) => void;
}

const optionsSchema = z.strictObject({
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale:erl'),
  ...counterFields,
  onRedisError: z
    .enum(['error', 'memory', 'allow', 'deny'])
    .default('error')
    .transform((policy): CounterErrorPolicy => (policy === 'deny' ? 'error' : policy)),
});

const WHERE = 'RedscaleStore';

/**
 * A store for express-rate-limit (v7 and v8): `rateLimit({ windowMs, limit, store: new
 * RedscaleStore({ redis }) })` replaces the MemoryStore or rate-limit-redis with the same counts:
 * a client's window starts at its first hit and lasts `windowMs`, and the store keeps counting
 * past the limit (express-rate-limit decides). One round trip per request, Cluster-safe keys,
 * Redis server time.
 */
export class RedscaleStore implements Store {
  /** Counts are shared through Redis, not kept per process. */
  readonly localKeys = false;
  /** The key namespace. */
  readonly prefix: string;
  readonly #options: CounterOptions;
  #counter: WindowCounter | undefined;
  #initError: InvalidOptionError | undefined;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RedscaleStoreOptions) {
    const parsed = parseOptions(optionsSchema, options, WHERE);
    this.#options = { ...parsed, onError: parsed.onError };
    this.prefix = parsed.prefix;
  }

  /**
   * Called by express-rate-limit with its options; the window is `windowMs`. An invalid
   * `windowMs` throws here (express-rate-limit logs it when the limiter is created) and every
   * later request fails with the same error, never with a misleading one.
   */
  init(options: Options): void {
    this.#initError = undefined;
    try {
      this.#counter = new WindowCounter(this.#options, options.windowMs, `${WHERE} (express-rate-limit's windowMs)`);
    } catch (error) {
      this.#counter = undefined;
      this.#initError = error as InvalidOptionError;
      throw error;
    }
  }

  /** The client's count and reset time; `undefined` when nothing is counted. Never rejects because Redis is away. */
  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const count = await this.#ready()
      .peek(key)
      .catch(() => undefined);
    return count && this.#info(count.totalHits, count.resetInMs);
  }

  /** Counts one hit. Rejects with the Redis error under `onRedisError: 'error'`, for `passOnStoreError` to decide. */
  async increment(key: string): Promise<ClientRateLimitInfo> {
    const count = await this.#ready().hit(key);
    return this.#info(Math.max(1, count.totalHits), count.resetInMs);
  }

  /** Gives one hit back (skipSuccessfulRequests / skipFailedRequests). Never rejects. */
  async decrement(key: string): Promise<void> {
    const counter = this.#counter;
    if (counter) await counter.refund(key);
    else this.#report(this.#notReady());
  }

  /** Forgets the client's count. Never rejects because Redis is away. */
  async resetKey(key: string): Promise<void> {
    await this.#ready().reset(key);
  }

  /** Forgets every client's count (every key under `prefix`). Never rejects because Redis is away. */
  async resetAll(): Promise<void> {
    await this.#ready().resetAll();
  }

  #ready(): WindowCounter {
    if (!this.#counter) throw this.#notReady();
    return this.#counter;
  }

  #notReady(): InvalidOptionError {
    return (
      this.#initError ??
      new InvalidOptionError(
        'store',
        'RedscaleStore',
        'a store passed to express-rate-limit, which calls init() with its options before any request',
        WHERE,
      )
    );
  }

  // resetTime on this process's clock: express-rate-limit compares it with Date.now().
  #info(totalHits: number, resetInMs: number): ClientRateLimitInfo {
    return { totalHits, resetTime: new Date(Date.now() + resetInMs) };
  }

  #report(error: RedscaleError): void {
    this.#options.onError?.(error);
  }
}
