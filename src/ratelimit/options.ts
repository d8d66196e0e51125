import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { type CircuitBreakerOption, circuitBreakerSchema } from '../common/circuit-breaker.js';
import type { Duration } from '../common/duration.js';
import { InvalidOptionError, type RedscaleError } from '../common/errors.js';
import { durationSchema, MAX_TIMER_MS, positiveInt, prefixSchema, redisClientSchema } from '../common/options.js';
import { type Logger, loggerSchema } from '../observability/logger.js';
import type { BlockMode } from './algorithms.js';
import { ruleSuffix } from './keys.js';
import { type LimitRule, limitRuleSchema } from './rules.js';

/** What to do when Redis fails or does not answer in time. */
export type RedisErrorPolicy = 'allow' | 'deny' | 'memory';

/**
 * Identities on a list: a set or array of ids (kept as a `Set`: O(1) per call), or a predicate
 * over the id, which may be async (a lookup of your own). A predicate that throws makes the call
 * reject with its error.
 */
export type IdentityList = ReadonlySet<string> | readonly string[] | ((id: string) => boolean | Promise<boolean>);

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
  /** One or more limits (up to 16), all checked and consumed together, atomically. */
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
  /**
   * Longest a call waits for Redis before the `onRedisError` policy answers (up to 2^31 - 1 ms).
   * A call given up on never counts later: its deadline travels to Redis in the server's time,
   * and a script that runs after it (ioredis replays unanswered commands after a reconnection)
   * does nothing. Default `'250ms'`.
   */
  timeout?: Duration;
  /**
   * Remember refusals in this process: an identity refused until T is refused again without a
   * round trip — until T, but for at most `maxAge`, after which Redis is asked again. So a
   * `reset()` on another instance, or keys deleted in Redis by hand (an admin unblock), reach
   * this process within `maxAge`. `false` turns it off. Default `{ maxEntries: 10_000, maxAge: '1s' }`.
   */
  localDenyCache?: false | { maxEntries?: number; maxAge?: Duration };
  /**
   * Size of the in-memory backend (the limiter without Redis, or the fallback; the fallback
   * keeps one per Redis node). Default `{ maxEntries: 100_000 }` keys.
   */
  memory?: { maxEntries?: number };
  /**
   * Per Redis node (each Cluster master has its own, so a dead master costs only its own keys):
   * once calls have failed for `failureWindow` without a success, and at least
   * `failureThreshold` times, skip that node for `cooldown` and answer by the policy at once;
   * then probe again. A slow moment shorter than `failureWindow` never opens it. `false` tries
   * Redis on every call. Default `{ failureThreshold: 3, failureWindow: '1s', cooldown: '1s' }`.
   */
  circuitBreaker?: false | CircuitBreakerOption;
  /**
   * Coalesce concurrent checks: the checks issued while the event loop is busy go as one script
   * call deciding every identity (standalone, Sentinel) or one pipeline per node (Cluster), each
   * still atomic and exact per identity. A batch goes once it holds a quarter of the checks in
   * flight, up to `maxSize`, so with fewer than 8 in flight a check goes at once, and several
   * batches are in flight for Redis to run one while the client reads another. `true` is
   * `{ maxSize: 16 }`. Default `true`.
   */
  batch?: boolean | { maxSize?: number };
  /**
   * A clock (epoch ms) that replaces Redis server time. For tests only: in production the
   * limiter uses Redis `TIME`, so instances with skewed clocks agree. With a clock, keys get no
   * expiry (Redis would expire them by its own clock): delete the test's prefix afterwards.
   */
  clock?: () => number;
  /** Called with every Redis failure the limiter absorbed (for logs and metrics). */
  onError?: (error: RedscaleError) => void;
  /**
   * Identities that bypass the limiter: `consume` and `peek` admit them at once, count nothing
   * and ask nothing of Redis (`reason: 'allow-list'`, `source: 'policy'`, no headers). `hit`
   * (counter semantics for drop-in stores), `refund` and `reset` ignore the list. Default none.
   */
  allowList?: IdentityList;
  /**
   * Identities refused at once: `consume` and `peek` refuse them without a round trip or a count
   * (`reason: 'deny-list'`, `source: 'policy'`, `retryAfter: 0`: no wait helps). Checked before
   * `allowList`, so an identity on both is refused. Default none.
   */
  denyList?: IdentityList;
  /**
   * A pino/console-like logger: Redis failures the limiter absorbed go to `warn`, a circuit
   * breaker opening to `warn` and closing to `debug`. Default: none (nothing is logged).
   */
  logger?: Logger;
}

/** Options of one call. Unknown options are refused (a misspelt `costs` is an error, not 1). */
export interface ConsumeOptions {
  /** Units this call costs, an integer from 1 to the smallest limit (a GCRA limit: its burst). Default 1. */
  cost?: number;
  /**
   * The limits of this call, in place of the limiter's (plans and tiers: one limiter, the limits
   * chosen per identity or request). Validated like the constructor's, once per array or rule
   * object (keep a tier's limits in a constant, pass the same array, and do not change it
   * afterwards: it is not validated again). Counts live under the
   * limit's algorithm and window, not its number: an identity whose plan changes from 10/min to
   * 100/min keeps what it used (8 of 10 becomes 8 of 100); a limit with another window or
   * algorithm counts afresh. Pass the same limits to `refund` and `reset` as to `consume`.
   * Default: the limiter's `limits`.
   */
  limits?: LimitRule | readonly LimitRule[];
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

/** A resolved list: a set, or a predicate. */
export type ResolvedList = ReadonlySet<string> | ((id: string) => boolean | Promise<boolean>);

const LIST = 'a Set or array of non-empty string ids, or a function (id) => boolean | Promise<boolean>';

/** A list of identities, resolved to a Set (a string alone is refused: it is not a list of ids). */
const listSchema = z
  .custom<IdentityList>(
    (value) =>
      typeof value === 'function' ||
      ((value instanceof Set || Array.isArray(value)) &&
        [...(value as Iterable<unknown>)].every((id) => typeof id === 'string' && id.length > 0)),
    { message: LIST },
  )
  .transform((value): ResolvedList => (typeof value === 'function' ? value : new Set(value as Iterable<string>)));

/** Two limits of one algorithm and window would share a counter: refused, naming both. */
function refineDistinct(limits: readonly LimitRule[], ctx: z.RefinementCtx, path: PropertyKey[]): void {
  const seen = new Map<string, number>();
  limits.forEach((rule, index) => {
    const shape = ruleSuffix(rule);
    const first = seen.get(shape);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [...path, index],
        message: `a limit that differs from limits[${first}] in algorithm or window (two limits of one algorithm and window would share a counter)`,
      });
    }
    seen.set(shape, index);
  });
}

const limitsUnion = z.union([limitRuleSchema.transform((rule) => [rule]), z.array(limitRuleSchema).min(1).max(16)]);

/** One limit or an array of up to 16, no two of one algorithm and window (a call's `limits`). */
export const limitsSchema = limitsUnion.superRefine((limits, ctx) => refineDistinct(limits, ctx, []));

/** Schema of {@link RateLimiterOptions}, resolved to milliseconds and defaults. */
export const limiterOptionsSchema = z
  .strictObject({
    redis: redisClientSchema.optional(),
    prefix: prefixSchema.default('redscale'),
    limits: limitsUnion,
    blockFor: durationSchema({ allowZero: true }).default(0),
    blockMode: z.enum(['until-room', 'exact']).default('until-room'),
    onRedisError: z.enum(['allow', 'deny', 'memory']).default('memory'),
    timeout: durationSchema({ max: MAX_TIMER_MS }).default(250),
    localDenyCache: z
      .union([
        z.literal(false),
        z.strictObject({
          maxEntries: positiveInt().default(10_000),
          maxAge: durationSchema({ max: MAX_TIMER_MS }).default(1_000),
        }),
      ])
      .prefault({}),
    memory: z.strictObject({ maxEntries: positiveInt().default(100_000) }).prefault({}),
    circuitBreaker: circuitBreakerSchema,
    batch: z
      .union([z.boolean(), z.strictObject({ maxSize: positiveInt().default(16) })])
      .default(true)
      .transform((batch) => (batch === false ? false : { maxSize: batch === true ? 16 : batch.maxSize })),
    clock: fn<() => number>().optional(),
    onError: fn<(error: RedscaleError) => void>().optional(),
    allowList: listSchema.optional(),
    denyList: listSchema.optional(),
    logger: loggerSchema.optional(),
  })
  .superRefine((options, ctx) => refineDistinct(options.limits, ctx, ['limits']));

/** Resolved limiter options. */
export type ResolvedLimiterOptions = z.output<typeof limiterOptionsSchema>;

/**
 * Validates one call's id and options, as strictly as constructor options: returns the cost.
 * `maxCost` is the smallest limit (a larger cost could never be admitted).
 */
export function checkCall(id: unknown, options: ConsumeOptions | undefined, maxCost: number, where: string): number {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidOptionError('id', id, 'a non-empty string identifying who is limited', where);
  }
  if (options === undefined) return 1;
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionError('(options)', options, 'an object like { cost: 2 }, or nothing', where);
  }
  for (const key in options) {
    if (key !== 'cost' && key !== 'limits')
      throw new InvalidOptionError(
        key,
        (options as Record<string, unknown>)[key],
        'one of the known options: cost, limits',
        where,
      );
  }
  const cost = options.cost ?? 1;
  if (!Number.isInteger(cost) || cost < 1 || cost > maxCost) {
    throw new InvalidOptionError(
      'cost',
      cost,
      `an integer from 1 to ${maxCost} (the smallest limit; more could never be admitted)`,
      where,
    );
  }
  return cost;
}
