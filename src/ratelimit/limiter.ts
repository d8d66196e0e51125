import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { nodeOf } from '../client/cluster.js';
import { isCluster } from '../client/types.js';
import { CircuitBreaker } from '../common/circuit-breaker.js';
import { untilDeadline } from '../common/deadline.js';
import { InvalidOptionError, RedscaleError, toRedisError } from '../common/errors.js';
import { hashTag } from '../common/keys.js';
import { parseOptions } from '../common/options.js';
import { ServerClock } from '../common/server-clock.js';
import { type LimiterCheckMessage, traced, tracing } from '../observability/channels.js';
import type { Mode } from './algorithms.js';
import { LocalDenyCache } from './deny-cache.js';
import { type BackendConfig, MemoryBackend } from './memory-backend.js';
import {
  type ConsumeOptions,
  checkCall,
  limiterOptionsSchema,
  type RateLimiterOptions,
  type ResolvedLimiterOptions,
  type ResolvedList,
} from './options.js';
import { type CallTiming, RedisBackend } from './redis-backend.js';
import { LimiterReporter } from './reporter.js';
import { listResult, policyResult, type RateLimitResult, toResult } from './result.js';
import { type LimitRule } from './rules.js';
import type { RateLimiterEvents, RateLimiterStats } from './stats.js';
import { type Variant, Variants } from './variants.js';

export type { ConsumeOptions, IdentityList, RateLimiterOptions, RedisErrorPolicy } from './options.js';

/** Whether `id` is on a list; a predicate's answer must be a boolean (anything else is a bug, named). */
async function onList(list: ResolvedList, id: string): Promise<boolean> {
  if (typeof list !== 'function') return list.has(id);
  const answer = await list(id);
  if (typeof answer !== 'boolean') {
    throw new InvalidOptionError('allowList/denyList', answer, 'a predicate returning true or false', 'RateLimiter');
  }
  return answer;
}

/** What the limiter keeps per Redis node: its breaker, its clock, and the fallback's counts. */
interface NodeState {
  /** The node's address (`host:port`), `'standalone'` or `'memory'`. */
  name: string;
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
export class RateLimiter extends EventEmitter<RateLimiterEvents> {
  /** The limits, in the order given. */
  readonly limits: readonly LimitRule[];
  readonly #options: ResolvedLimiterOptions;
  readonly #config: BackendConfig;
  /** The limiter's own limits and those calls gave (`ConsumeOptions.limits`), each with its plan. */
  readonly #variants: Variants;
  readonly #denied: LocalDenyCache | undefined;
  readonly #nodes = new Map<string, NodeState>();
  /** The one node of a standalone client (no slot to compute). */
  readonly #onlyNode: NodeState | undefined;
  #memory: MemoryBackend | undefined;
  readonly #report: LimiterReporter;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RateLimiterOptions) {
    super();
    const resolved = parseOptions(limiterOptionsSchema, options, 'RateLimiter');
    this.#options = resolved;
    this.#report = new LimiterReporter(this, resolved);
    const redis = resolved.redis;
    const common = {
      base: `${resolved.prefix}:rl:`,
      blockForMs: resolved.blockFor,
      blockMode: resolved.blockMode,
      clock: resolved.clock,
    };
    this.#variants = new Variants(resolved.limits, (shape) =>
      redis
        ? new RedisBackend(redis, { ...common, ...shape, timeoutMs: resolved.timeout, batch: resolved.batch })
        : undefined,
    );
    const own = this.#variants.own;
    this.limits = own.rules;
    this.#config = { ...common, specs: own.specs, suffixes: own.suffixes };
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
    let variant: Variant;
    let cost: number;
    try {
      variant = this.#variants.of(options?.limits, 'RateLimiter.consume()');
      cost = checkCall(id, options, variant.capacity, 'RateLimiter.consume()');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#check('consume', id, cost, variant);
  }

  /** Says whether `cost` would be admitted now, without counting anything. */
  async peek(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    const variant = this.#variants.of(options?.limits, 'RateLimiter.peek()');
    const cost = checkCall(id, options, variant.capacity, 'RateLimiter.peek()');
    return this.#check('peek', id, cost, variant);
  }

  /** Answers from the deny list, then the allow list, before any count (no round trip). */
  async #listedOr(mode: Mode, id: string, cost: number, variant: Variant): Promise<RateLimitResult> {
    const { allowList, denyList } = this.#options;
    if (denyList && (await onList(denyList, id)))
      return this.#report.decided(mode, id, listResult('deny-list', variant.rules));
    if (allowList && (await onList(allowList, id)))
      return this.#report.decided(mode, id, listResult('allow-list', variant.rules));
    return this.#decide(mode, id, cost, variant);
  }

  /**
   * Counts `cost` in every limit whether or not it fits, and reports the counts: for stores of
   * libraries that decide themselves (express-rate-limit, @fastify/rate-limit). Ignores
   * `blockFor`. Sliding-log and GCRA limits cannot count past their limit, so they are not
   * allowed here.
   */
  async hit(id: string, options?: ConsumeOptions): Promise<RateLimitResult> {
    const variant = this.#variants.of(options?.limits, 'RateLimiter.hit()');
    const cost = checkCall(id, options, variant.capacity, 'RateLimiter.hit()');
    if (!variant.hitAllowed) {
      throw new InvalidOptionError(
        'limits',
        variant.rules.map((rule) => rule.name),
        'fixedWindow or slidingWindow limits for hit(): a sliding log cannot count past its limit, nor a GCRA bucket past its burst',
        'RateLimiter.hit()',
      );
    }
    return this.#check('hit', id, cost, variant);
  }

  /**
   * Gives `cost` back to every limit (never below zero), e.g. for a request that should not
   * count. Rejects with a RedscaleError if Redis fails; a refund that times out is never applied
   * later.
   */
  async refund(id: string, options?: ConsumeOptions): Promise<void> {
    const variant = this.#variants.of(options?.limits, 'RateLimiter.refund()');
    const cost = checkCall(id, options, variant.capacity, 'RateLimiter.refund()');
    this.#denied?.forget(this.#denyKey(id, variant));
    const redis = variant.redis;
    if (!redis) return this.#memoryBackend().refund(id, cost, variant);
    const node = this.#nodeFor(id);
    node.fallback?.refund(id, cost, variant);
    await this.#change(node, (timing) => redis.refund(id, cost, timing), 'rate-limit refund', id);
  }

  /**
   * Forgets everything counted for `id` and lifts its block. Rejects with a RedscaleError if
   * Redis fails; a reset that times out is never applied later. Other instances' local deny
   * caches follow within `localDenyCache.maxAge`.
   */
  async reset(id: string, options?: Pick<ConsumeOptions, 'limits'>): Promise<void> {
    const variant = this.#variants.of(options?.limits, 'RateLimiter.reset()');
    checkCall(id, options?.limits === undefined ? undefined : { limits: options.limits }, 1, 'RateLimiter.reset()');
    this.#denied?.forget(this.#denyKey(id, variant));
    const redis = variant.redis;
    if (!redis) return this.#memoryBackend().reset(id, variant);
    const node = this.#nodeFor(id);
    node.fallback?.reset(id, variant);
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
    const redis = this.#variants.own.redis;
    if (!redis) return;
    try {
      await redis.resetAll();
    } catch (error) {
      const wrapped = toRedisError('rate-limit resetAll', error);
      this.#report.redisError(wrapped);
      throw wrapped;
    }
  }

  /** Counters since the limiter was created (one source with the events). */
  stats(): RateLimiterStats {
    return { ...this.#report.stats };
  }

  /** Each Redis node's circuit breaker state, by node address (`'standalone'` for one Redis). */
  circuitBreakers(): Record<string, 'closed' | 'open' | 'half-open'> {
    const states: Record<string, 'closed' | 'open' | 'half-open'> = {};
    for (const node of this.#nodes.values()) if (node.breaker) states[node.name] = node.breaker.state;
    return states;
  }

  /** A check, traced on `redscale:limiter.check` when someone subscribed (and nothing built otherwise). */
  #check(mode: Mode, id: string, cost: number, variant: Variant): Promise<RateLimitResult> {
    const channel = tracing.limiterCheck;
    if (!traced(channel)) return this.#answer(mode, id, cost, variant);
    const message: LimiterCheckMessage = { prefix: this.#options.prefix, operation: mode, id, cost };
    return channel.tracePromise(this.#answer, message, this, mode, id, cost, variant);
  }

  /** `hit` counts for drop-in stores whatever the lists say; `consume` and `peek` ask them first. */
  #answer(mode: Mode, id: string, cost: number, variant: Variant): Promise<RateLimitResult> {
    if (mode !== 'hit' && (this.#options.allowList || this.#options.denyList)) {
      return this.#listedOr(mode, id, cost, variant);
    }
    return this.#decide(mode, id, cost, variant);
  }

  /** Remembered refusals are per identity and limits: another plan's call must ask again. */
  #denyKey(id: string, variant: Variant): string {
    return variant === this.#variants.own ? id : `${variant.key}\n${id}`;
  }

  async #decide(mode: Mode, id: string, cost: number, variant: Variant): Promise<RateLimitResult> {
    const denyKey = this.#denied ? this.#denyKey(id, variant) : id;
    if (mode === 'consume' && this.#denied) {
      const denied = this.#denied.get(denyKey, cost);
      if (denied) return this.#report.decided(mode, id, denied);
    }
    const redis = variant.redis;
    if (!redis) {
      return this.#report.decided(
        mode,
        id,
        toResult(this.#memoryBackend().decide(id, mode, cost, variant), variant.rules, 'memory'),
      );
    }
    const node = this.#nodeFor(id);
    const breaker = node.breaker;
    if (breaker && !breaker.tryPass()) {
      this.#report.stats.breakerSkips++;
      const error = new RedscaleError(
        'ERR_REDIS',
        `redscale: Redis is skipped for ${breaker.retryInMs} ms after failing (circuit open)`,
        { context: { id } },
      );
      return this.#fallback(node, mode, id, cost, variant, error);
    }
    const timeout = this.#options.timeout;
    const deadline = performance.now() + timeout;
    let result: RateLimitResult;
    try {
      // The backend keeps the deadline (a batch files each check with the shared sweeper).
      const decision = await onServerTime(node, deadline, timeout, (timing) => redis.decide(id, mode, cost, timing));
      result = toResult(decision, variant.rules, 'redis');
    } catch (error) {
      const wrapped = toRedisError('rate-limit check', error, { id, node: node.name });
      const opened = breaker?.failure();
      this.#report.redisError(wrapped);
      if (opened) this.#report.breakerChanged(node.name, 'open');
      return this.#fallback(node, mode, id, cost, variant, wrapped);
    }
    if (breaker?.success()) this.#report.breakerChanged(node.name, 'closed');
    // Back on Redis: what the fallback counted for this node is stale, and would be wrong next outage.
    if (node.fallback) node.fallback = undefined;
    if (!result.allowed && mode === 'consume') this.#denied?.remember(denyKey, cost, result);
    return this.#report.decided(mode, id, result);
  }

  #fallback(
    node: NodeState,
    mode: Mode,
    id: string,
    cost: number,
    variant: Variant,
    error: RedscaleError,
  ): RateLimitResult {
    const policy = this.#options.onRedisError;
    if (policy === 'memory') {
      node.fallback ??= new MemoryBackend(this.#config, this.#options.memory.maxEntries);
      const result = toResult(node.fallback.decide(id, mode, cost, variant), variant.rules, 'memory');
      result.error = error;
      return this.#report.decided(mode, id, result);
    }
    return this.#report.decided(
      mode,
      id,
      policyResult(policy === 'allow', variant.rules, error, node.breaker?.retryInMs || 1_000),
    );
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
      await untilDeadline(onServerTime(node, deadline, timeout, call), deadline, timeout, operation, { id });
    } catch (error) {
      const wrapped = toRedisError(operation, error, { id });
      this.#report.redisError(wrapped);
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
        name,
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
function onServerTime<T>(
  node: NodeState,
  deadline: number,
  timeoutMs: number,
  call: (timing: CallTiming) => Promise<T>,
): Promise<T> {
  const clock = node.clock;
  const timing: CallTiming = {
    deadline: clock.serverTimeAt(deadline),
    clock,
    expiresAt: deadline,
    timeoutMs,
    node: node.name,
  };
  const first = call(timing);
  // The common case, a clock already learned, costs no wrapper.
  if (clock.learned) return first;
  return first.catch((error: unknown) => {
    const ranLate = error instanceof RedscaleError && error.context.ranAfterDeadline === true;
    if (!ranLate || !clock.learned || performance.now() >= deadline) throw error;
    return call({ ...timing, deadline: clock.serverTimeAt(deadline) });
  });
}
