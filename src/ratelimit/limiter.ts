import { performance } from 'node:perf_hooks';
import { nodeOf } from '../client/cluster.js';
import { isCluster } from '../client/types.js';
import { CircuitBreaker } from '../common/circuit-breaker.js';
import { untilDeadline } from '../common/deadline.js';
import { InvalidOptionError, RedscaleError, toRedisError } from '../common/errors.js';
import { hashTag } from '../common/keys.js';
import { parseOptions } from '../common/options.js';
import { ServerClock } from '../common/server-clock.js';
import type { Mode } from './algorithms.js';
import { LocalDenyCache } from './deny-cache.js';
import { ruleSuffix } from './keys.js';
import { type BackendConfig, MemoryBackend } from './memory-backend.js';
import {
  type ConsumeOptions,
  checkCall,
  limiterOptionsSchema,
  type RateLimiterOptions,
  type ResolvedLimiterOptions,
} from './options.js';
import { type CallTiming, RedisBackend } from './redis-backend.js';
import { policyResult, type RateLimitResult, toResult } from './result.js';
import { algorithmCode, type LimitRule } from './rules.js';

export type { ConsumeOptions, RateLimiterOptions, RedisErrorPolicy } from './options.js';

/** What the limiter keeps per Redis node: its breaker, its clock, and the fallback's counts. */
interface NodeState {
  breaker: CircuitBreaker | undefined;
  clock: ServerClock;
  /** The in-memory fallback's counts for this node's keys, while the node is failing. */
  fallback: MemoryBackend | undefined;
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
  readonly #options: ResolvedLimiterOptions;
  readonly #config: BackendConfig;
  readonly #redis: RedisBackend | undefined;
  readonly #denied: LocalDenyCache | undefined;
  readonly #smallestLimit: number;
  readonly #hitAllowed: boolean;
  readonly #nodes = new Map<string, NodeState>();
  /** The one node of a standalone client (no slot to compute). */
  readonly #onlyNode: NodeState | undefined;
  #memory: MemoryBackend | undefined;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RateLimiterOptions) {
    const resolved = parseOptions(limiterOptionsSchema, options, 'RateLimiter');
    this.#options = resolved;
    this.limits = Object.freeze([...resolved.limits]);
    this.#smallestLimit = Math.min(...resolved.limits.map((rule) => rule.limit));
    this.#hitAllowed = !resolved.limits.some((rule) => rule.algorithm === 'sliding-log');
    this.#config = {
      base: `${resolved.prefix}:rl:`,
      specs: resolved.limits.map((rule) => ({
        code: algorithmCode(rule),
        limit: rule.limit,
        window: rule.windowMs,
        ...(rule.whenExceeded && rule.whenExceeded !== 'keep' && { exceeded: rule.whenExceeded }),
      })),
      suffixes: resolved.limits.map(ruleSuffix),
      blockForMs: resolved.blockFor,
      blockMode: resolved.blockMode,
      clock: resolved.clock,
    };
    const redis = resolved.redis;
    this.#redis = redis
      ? new RedisBackend(redis, { ...this.#config, timeoutMs: resolved.timeout, batch: resolved.batch })
      : undefined;
    this.#onlyNode = redis && !isCluster(redis) ? this.#node('standalone') : undefined;
    this.#denied = resolved.localDenyCache
      ? new LocalDenyCache(resolved.localDenyCache.maxEntries, resolved.localDenyCache.maxAge)
      : undefined;
  }

  /**
   * Checks every limit and, if all admit `cost`, counts it in all of them. A refused identity is
   * remembered locally (see `localDenyCache`) until it may retry.
   */
  consume(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    let cost: number;
    try {
      cost = checkCall(id, options, this.#smallestLimit, 'RateLimiter.consume()');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#decide('consume', id, cost);
  }

  /** Says whether `cost` would be admitted now, without counting anything. */
  async peek(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    return this.#decide('peek', id, checkCall(id, options, this.#smallestLimit, 'RateLimiter.peek()'));
  }

  /**
   * Counts `cost` in every limit whether or not it fits, and reports the counts: for stores of
   * libraries that decide themselves (express-rate-limit, @fastify/rate-limit). Ignores
   * `blockFor`. Sliding-log limits cannot count past their limit, so they are not allowed here.
   */
  async hit(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    const cost = checkCall(id, options, this.#smallestLimit, 'RateLimiter.hit()');
    if (!this.#hitAllowed) {
      throw new InvalidOptionError(
        'limits',
        this.limits.map((rule) => rule.name),
        'fixedWindow or slidingWindow limits for hit(): a sliding log cannot count past its limit',
        'RateLimiter.hit()',
      );
    }
    return this.#decide('hit', id, cost);
  }

  /**
   * Gives `cost` back to every limit (never below zero), e.g. for a request that should not
   * count. Rejects with a RedscaleError if Redis fails; a refund that times out is never applied
   * later.
   */
  async refund(id: string, options?: ConsumeOptions): Promise<void> {
    const cost = checkCall(id, options, this.#smallestLimit, 'RateLimiter.refund()');
    this.#denied?.forget(id);
    const redis = this.#redis;
    if (!redis) return this.#memoryBackend().refund(id, cost);
    const node = this.#nodeFor(id);
    node.fallback?.refund(id, cost);
    await this.#change(node, (timing) => redis.refund(id, cost, timing), 'rate-limit refund', id);
  }

  /**
   * Forgets everything counted for `id` and lifts its block. Rejects with a RedscaleError if
   * Redis fails; a reset that times out is never applied later. Other instances' local deny
   * caches follow within `localDenyCache.maxAge`.
   */
  async reset(id: string): Promise<void> {
    checkCall(id, undefined, this.#smallestLimit, 'RateLimiter.reset()');
    this.#denied?.forget(id);
    const redis = this.#redis;
    if (!redis) return this.#memoryBackend().reset(id);
    const node = this.#nodeFor(id);
    node.fallback?.reset(id);
    await this.#change(node, (timing) => redis.reset(id, timing), 'rate-limit reset', id);
  }

  /**
   * Forgets every identity's counts and blocks under this limiter's prefix (`<prefix>:rl:…`,
   * limiters sharing the prefix included), by SCAN on every master and UNLINK: O(keys), for
   * administration and tests, not the request path. Rejects with a RedscaleError if Redis fails.
   */
  async resetAll(): Promise<void> {
    this.#denied?.clear();
    this.#memory?.clear();
    for (const node of this.#nodes.values()) node.fallback?.clear();
    if (!this.#redis) return;
    try {
      await this.#redis.resetAll();
    } catch (error) {
      const wrapped = toRedisError('rate-limit resetAll', error);
      this.#options.onError?.(wrapped);
      throw wrapped;
    }
  }

  async #decide(mode: Mode, id: string, cost: number): Promise<RateLimitResult> {
    if (mode === 'consume' && this.#denied) {
      const denied = this.#denied.get(id, cost);
      if (denied) return denied;
    }
    const redis = this.#redis;
    if (!redis) return toResult(this.#memoryBackend().decide(id, mode, cost), this.limits, 'memory');
    const node = this.#nodeFor(id);
    const breaker = node.breaker;
    if (breaker && !breaker.tryPass()) {
      const error = new RedscaleError(
        'ERR_REDIS',
        `redscale: Redis is skipped for ${breaker.retryInMs} ms after failing (circuit open)`,
        { context: { id } },
      );
      return this.#fallback(node, mode, id, cost, error);
    }
    const timeout = this.#options.timeout;
    const deadline = performance.now() + timeout;
    let result: RateLimitResult;
    try {
      const decision = await untilDeadline(
        onServerTime(node, deadline, (timing) => redis.decide(id, mode, cost, timing)),
        deadline,
        timeout,
        'rate-limit check',
        {
          id,
        },
      );
      result = toResult(decision, this.limits, 'redis');
    } catch (error) {
      const wrapped = toRedisError('rate-limit check', error, { id });
      breaker?.failure();
      this.#options.onError?.(wrapped);
      return this.#fallback(node, mode, id, cost, wrapped);
    }
    breaker?.success();
    // Back on Redis: what the fallback counted for this node is stale, and would be wrong next outage.
    if (node.fallback) node.fallback = undefined;
    if (!result.allowed && mode === 'consume') this.#denied?.remember(id, cost, result);
    return result;
  }

  #fallback(node: NodeState, mode: Mode, id: string, cost: number, error: RedscaleError): RateLimitResult {
    const policy = this.#options.onRedisError;
    if (policy === 'memory') {
      node.fallback ??= new MemoryBackend(this.#config, this.#options.memory.maxEntries);
      const result = toResult(node.fallback.decide(id, mode, cost), this.limits, 'memory');
      result.error = error;
      return result;
    }
    return policyResult(policy === 'allow', this.limits, error, node.breaker?.retryInMs || 1_000);
  }

  /** Runs a state-changing call (refund, reset) under one deadline, carried to Redis. */
  async #change(
    node: NodeState,
    call: (timing: CallTiming) => Promise<void>,
    operation: string,
    id: string,
  ): Promise<void> {
    const timeout = this.#options.timeout;
    const deadline = performance.now() + timeout;
    try {
      await untilDeadline(onServerTime(node, deadline, call), deadline, timeout, operation, { id });
    } catch (error) {
      const wrapped = toRedisError(operation, error, { id });
      this.#options.onError?.(wrapped);
      throw wrapped;
    }
  }

  #nodeFor(id: string): NodeState {
    if (this.#onlyNode) return this.#onlyNode;
    const redis = this.#options.redis;
    return this.#node(redis ? nodeOf(redis, `${this.#config.base}${hashTag(id)}`) : 'memory');
  }

  #node(name: string): NodeState {
    let node = this.#nodes.get(name);
    if (!node) {
      const breaker = this.#options.circuitBreaker;
      node = {
        breaker: breaker ? new CircuitBreaker(breaker) : undefined,
        clock: new ServerClock(),
        fallback: undefined,
      };
      this.#nodes.set(name, node);
    }
    return node;
  }

  #memoryBackend(): MemoryBackend {
    this.#memory ??= new MemoryBackend(this.#config, this.#options.memory.maxEntries);
    return this.#memory;
  }
}

/**
 * Runs a call with its deadline in the server's time. Until a node's first reply, the deadline is
 * reckoned on this host's wall clock; when that clock is behind the server's (skewed, or frozen by
 * a test's fake timers), the script finds it past, does nothing, and answers with its own time.
 * Then, and only then, the call is sent once more on the time just learned, within the same
 * local deadline: the first run had no effect, so nothing can count twice.
 */
async function onServerTime<T>(
  node: NodeState,
  deadline: number,
  call: (timing: CallTiming) => Promise<T>,
): Promise<T> {
  const learned = node.clock.learned;
  try {
    return await call({ deadline: node.clock.serverTimeAt(deadline), clock: node.clock });
  } catch (error) {
    const ranLate = error instanceof RedscaleError && error.context.ranAfterDeadline === true;
    if (learned || !ranLate || !node.clock.learned || performance.now() >= deadline) throw error;
    return call({ deadline: node.clock.serverTimeAt(deadline), clock: node.clock });
  }
}
