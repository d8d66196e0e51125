import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { CircuitBreaker, type CircuitBreakerOption, circuitBreakerSchema } from '../common/circuit-breaker.js';
import { withTimeout } from '../common/deadline.js';
import type { Duration } from '../common/duration.js';
import { InvalidOptionError, RedscaleError, toRedisError } from '../common/errors.js';
import { durationSchema, parseOptions, positiveInt, prefixSchema, redisClientSchema } from '../common/options.js';
import type { BlockMode, Mode } from './algorithms.js';
import { type BackendConfig, MemoryBackend, RedisBackend } from './backend.js';
import { ruleSuffix } from './keys.js';
import { policyResult, type RateLimitResult, toResult } from './result.js';
import { algorithmCode, type LimitRule, limitRuleSchema } from './rules.js';

/** What to do when Redis fails or does not answer in time. */
export type RedisErrorPolicy = 'allow' | 'deny' | 'memory';

/** Options for {@link RateLimiter}. */
export interface RateLimiterOptions {
  /**
   * Where counters live. Omit it for an in-memory limiter (one instance, development, tests):
   * the same semantics, but each process counts alone.
   */
  redis?: RedisLike;
  /**
   * Namespace of the limiter's keys (`<prefix>:rl:{<id>}:…`). Limiters that should count
   * separately need different prefixes; the same limiter on many instances shares one.
   * Default `'redscale'`.
   */
  prefix?: string;
  /** One or more limits, all checked and consumed together, atomically. */
  limits: LimitRule | LimitRule[];
  /**
   * After a refusal by `consume`, block the identity for this long (see `blockMode`). Calls while
   * blocked are refused without being counted. Default `0` (off).
   */
  blockFor?: Duration;
  /**
   * How a `blockFor` block ends. `'until-room'`: it lasts `blockFor` and at least until the
   * refusing limit admits again, so the first call after it is judged on a limit with room.
   * `'exact'`: it lasts exactly `blockFor`, and when it ends every count of the identity starts
   * afresh (as @nestjs/throttler blocks for `blockDuration`). Default `'until-room'`.
   */
  blockMode?: BlockMode;
  /**
   * When Redis fails or times out: `'allow'` lets the call through, `'deny'` refuses it, and
   * `'memory'` answers from an in-process limiter with the same limits (per instance, so N
   * instances admit up to N × limit) until Redis answers again. Default `'memory'`.
   */
  onRedisError?: RedisErrorPolicy;
  /** Longest a call waits for Redis before the `onRedisError` policy answers. Default `'250ms'`. */
  timeout?: Duration;
  /**
   * Remember refusals in this process: an identity refused until T is refused again before T
   * without a round trip. `false` turns it off. Default `{ maxEntries: 10_000 }`.
   */
  localDenyCache?: false | { maxEntries?: number };
  /** Size of the in-memory backend (the limiter without Redis, or the fallback). Default `{ maxEntries: 100_000 }` keys. */
  memory?: { maxEntries?: number };
  /**
   * After `failureThreshold` consecutive Redis failures, skip Redis for `cooldown` and answer by
   * the policy at once; then probe again. `false` tries Redis on every call. Default
   * `{ failureThreshold: 1, cooldown: '1s' }`.
   */
  circuitBreaker?: false | CircuitBreakerOption;
  /**
   * A clock (epoch ms) that replaces Redis server time. For tests only: in production the
   * limiter uses Redis `TIME`, so instances with skewed clocks agree. With a clock, keys get no
   * expiry (Redis would expire them by its own clock): delete the test's prefix afterwards.
   */
  clock?: () => number;
  /** Called with every Redis failure the limiter absorbed (for logs and metrics). */
  onError?: (error: RedscaleError) => void;
}

/** Options of one call. */
export interface ConsumeOptions {
  /** Units this call costs, an integer from 1 to the smallest limit. Default 1. */
  cost?: number;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

const optionsSchema = z
  .strictObject({
    redis: redisClientSchema.optional(),
    prefix: prefixSchema.default('redscale'),
    limits: z.union([limitRuleSchema.transform((rule) => [rule]), z.array(limitRuleSchema).min(1).max(16)]),
    blockFor: durationSchema({ allowZero: true }).default(0),
    blockMode: z.enum(['until-room', 'exact']).default('until-room'),
    onRedisError: z.enum(['allow', 'deny', 'memory']).default('memory'),
    timeout: durationSchema().default(250),
    localDenyCache: z
      .union([z.literal(false), z.strictObject({ maxEntries: positiveInt().default(10_000) })])
      .prefault({}),
    memory: z.strictObject({ maxEntries: positiveInt().default(100_000) }).prefault({}),
    circuitBreaker: circuitBreakerSchema,
    clock: fn<() => number>().optional(),
    onError: fn<(error: RedscaleError) => void>().optional(),
  })
  .superRefine((options, ctx) => {
    const seen = new Map<string, number>();
    options.limits.forEach((rule, index) => {
      const shape = ruleSuffix(rule);
      const first = seen.get(shape);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['limits', index],
          message: `a limit that differs from limits[${first}] in algorithm or window (two limits of one algorithm and window would share a counter)`,
        });
      }
      seen.set(shape, index);
    });
  });

type ResolvedOptions = z.output<typeof optionsSchema>;

interface LocalDeny {
  until: number;
  cost: number;
  result: RateLimitResult;
}

/**
 * Checks and consumes one or more limits for an identity in one round trip: either every limit
 * admits the cost and all of them count it, or none counts anything and the result says which
 * limit refused. Runs on Redis (standalone or Cluster, using Redis server time) or in memory with
 * the same semantics. Never rejects because of Redis: a failure is answered by `onRedisError`.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({
 *   redis, prefix: 'api',
 *   limits: [slidingWindow({ limit: 10, window: '1s' }), fixedWindow({ limit: 1000, window: '1d' })],
 * })
 * const result = await limiter.consume(`user:${userId}`)
 * if (!result.allowed) reply.status(429).header('Retry-After', Math.ceil(result.retryAfter / 1000))
 * ```
 */
export class RateLimiter {
  /** The limits, in the order given. */
  readonly limits: readonly LimitRule[];
  readonly #options: ResolvedOptions;
  readonly #config: BackendConfig;
  readonly #redis: RedisBackend | undefined;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #denied: LRUCache<string, LocalDeny> | undefined;
  readonly #smallestLimit: number;
  #memory: MemoryBackend | undefined;
  #memoryHoldsFallbackCounts = false;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RateLimiterOptions) {
    const resolved = parseOptions(optionsSchema, options, 'RateLimiter');
    this.#options = resolved;
    this.limits = Object.freeze([...resolved.limits]);
    this.#smallestLimit = Math.min(...resolved.limits.map((rule) => rule.limit));
    this.#config = {
      base: `${resolved.prefix}:rl:`,
      specs: resolved.limits.map((rule) => ({
        code: algorithmCode(rule),
        limit: rule.limit,
        window: rule.windowMs,
      })),
      suffixes: resolved.limits.map(ruleSuffix),
      blockForMs: resolved.blockFor,
      blockMode: resolved.blockMode,
      clock: resolved.clock,
    };
    this.#redis = resolved.redis ? new RedisBackend(resolved.redis, this.#config) : undefined;
    this.#breaker = resolved.circuitBreaker && this.#redis ? new CircuitBreaker(resolved.circuitBreaker) : undefined;
    this.#denied = resolved.localDenyCache
      ? new LRUCache<string, LocalDeny>({ max: resolved.localDenyCache.maxEntries })
      : undefined;
  }

  /**
   * Checks every limit and, if all admit `cost`, counts it in all of them. A refused identity is
   * remembered locally (see `localDenyCache`) until it may retry.
   */
  consume(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#decide('consume', id, options);
  }

  /** Says whether `cost` would be admitted now, without counting anything. */
  peek(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#decide('peek', id, options);
  }

  /**
   * Counts `cost` in every limit whether or not it fits, and reports the counts: for stores of
   * libraries that decide themselves (express-rate-limit, @fastify/rate-limit). Ignores
   * `blockFor`. Sliding-log limits cannot count past their limit, so they are not allowed here.
   */
  hit(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#decide('hit', id, options);
  }

  /**
   * Gives `cost` back to every limit (never below zero), e.g. for a request that should not
   * count. Rejects with a RedscaleError if Redis fails.
   */
  async refund(id: string, options?: ConsumeOptions): Promise<void> {
    const cost = this.#check(id, options?.cost, 'refund');
    this.#denied?.delete(id);
    if (this.#memoryHoldsFallbackCounts || !this.#redis) await this.#memoryBackend().refund(id, cost);
    if (this.#redis) await this.#callRedis(this.#redis.refund(id, cost), 'rate-limit refund', id);
  }

  /** Forgets everything counted for `id` and lifts its block. Rejects with a RedscaleError if Redis fails. */
  async reset(id: string): Promise<void> {
    this.#check(id, 1, 'reset');
    this.#denied?.delete(id);
    if (this.#memoryHoldsFallbackCounts || !this.#redis) await this.#memoryBackend().reset(id);
    if (this.#redis) await this.#callRedis(this.#redis.reset(id), 'rate-limit reset', id);
  }

  /**
   * Forgets every identity's counts and blocks under this limiter's prefix (`<prefix>:rl:…`,
   * limiters sharing the prefix included), by SCAN on every master and UNLINK: O(keys), for
   * administration and tests, not the request path. Rejects with a RedscaleError if Redis fails.
   */
  async resetAll(): Promise<void> {
    this.#denied?.clear();
    if (this.#memoryHoldsFallbackCounts || !this.#redis) await this.#memoryBackend().resetAll();
    if (this.#redis) {
      try {
        await this.#redis.resetAll();
      } catch (error) {
        const wrapped = toRedisError('rate-limit resetAll', error);
        this.#options.onError?.(wrapped);
        throw wrapped;
      }
    }
  }

  async #decide(mode: Mode, id: string, options: ConsumeOptions | undefined): Promise<RateLimitResult> {
    const cost = this.#check(id, options?.cost, mode);
    if (mode === 'consume' && this.#denied) {
      const denied = this.#denied.get(id);
      if (denied && cost >= denied.cost) return locallyDenied(denied);
    }
    const redis = this.#redis;
    if (!redis) return toResult(await this.#memoryBackend().decide(id, mode, cost), this.limits, 'memory');
    if (this.#breaker && !this.#breaker.tryPass()) {
      const error = new RedscaleError(
        'ERR_REDIS',
        `redscale: Redis is skipped for ${this.#breaker.retryInMs} ms after failing (circuit open)`,
        { context: { id } },
      );
      return this.#fallback(mode, id, cost, error);
    }
    let result: RateLimitResult;
    try {
      const decision = await withTimeout(redis.decide(id, mode, cost), this.#options.timeout, 'rate-limit check', {
        id,
      });
      result = toResult(decision, this.limits, 'redis');
    } catch (error) {
      const wrapped = toRedisError('rate-limit check', error, { id });
      this.#breaker?.failure();
      this.#options.onError?.(wrapped);
      return this.#fallback(mode, id, cost, wrapped);
    }
    this.#breaker?.success();
    if (this.#memoryHoldsFallbackCounts) {
      // Back on Redis: what the fallback counted is stale, and would be wrong next outage.
      this.#memory?.clear();
      this.#memoryHoldsFallbackCounts = false;
    }
    if (!result.allowed && mode === 'consume' && this.#denied && result.retryAfter > 0) {
      this.#denied.set(id, { until: performance.now() + result.retryAfter, cost, result }, { ttl: result.retryAfter });
    }
    return result;
  }

  async #fallback(mode: Mode, id: string, cost: number, error: RedscaleError): Promise<RateLimitResult> {
    const policy = this.#options.onRedisError;
    if (policy === 'memory') {
      this.#memoryHoldsFallbackCounts = true;
      const result = toResult(await this.#memoryBackend().decide(id, mode, cost), this.limits, 'memory');
      result.error = error;
      return result;
    }
    return policyResult(policy === 'allow', this.limits, error, this.#breaker?.retryInMs || 1_000);
  }

  async #callRedis(call: Promise<void>, operation: string, id: string): Promise<void> {
    try {
      await withTimeout(call, this.#options.timeout, operation, { id });
    } catch (error) {
      const wrapped = toRedisError(operation, error, { id });
      this.#options.onError?.(wrapped);
      throw wrapped;
    }
  }

  #memoryBackend(): MemoryBackend {
    this.#memory ??= new MemoryBackend(this.#config, this.#options.memory.maxEntries);
    return this.#memory;
  }

  #check(id: string, cost: number | undefined, operation: Mode | 'refund' | 'reset'): number {
    if (typeof id !== 'string' || id.length === 0) {
      throw new InvalidOptionError(
        'id',
        id,
        'a non-empty string identifying who is limited',
        `RateLimiter.${operation}()`,
      );
    }
    const units = cost ?? 1;
    if (!Number.isInteger(units) || units < 1 || units > this.#smallestLimit) {
      throw new InvalidOptionError(
        'cost',
        units,
        `an integer from 1 to ${this.#smallestLimit} (the smallest limit; more could never be admitted)`,
        `RateLimiter.${operation}()`,
      );
    }
    if (operation === 'hit' && this.limits.some((rule) => rule.algorithm === 'sliding-log')) {
      throw new InvalidOptionError(
        'limits',
        this.limits.map((rule) => rule.name),
        'fixedWindow or slidingWindow limits for hit(): a sliding log cannot count past its limit',
        'RateLimiter.hit()',
      );
    }
    return units;
  }
}

function locallyDenied(denied: LocalDeny): RateLimitResult {
  const left = Math.max(1, Math.ceil(denied.until - performance.now()));
  return {
    ...denied.result,
    reason: 'local-block',
    source: 'local',
    retryAfter: left,
    decidedAt: denied.result.decidedAt + (denied.result.retryAfter - left),
  };
}
