import { z } from 'zod';
import type { Duration } from '../common/duration.js';
import { durationSchema, MAX_DURATION_MS, parseOptions, positiveInt } from '../common/options.js';

/** The algorithms a limit can use. */
export type Algorithm = 'fixed-window' | 'sliding-window' | 'sliding-log' | 'gcra';

/**
 * Where a fixed window starts: `'clock'` aligns windows to the epoch (the same boundaries for
 * every identity); `'first-hit'` starts an identity's window with its first counted hit.
 */
export type WindowAnchor = 'clock' | 'first-hit';

/** One limit: at most `limit` units of cost per `window`. Build one with the functions below. */
export interface LimitRule {
  /** How hits are counted (see {@link Algorithm}). */
  readonly algorithm: Algorithm;
  /** Units of cost allowed per window. */
  readonly limit: number;
  /** Window length in milliseconds. */
  readonly windowMs: number;
  /** Shown in results and headers; default e.g. `'10/1s'`. */
  readonly name: string;
  /** Fixed windows only: where a window starts (see {@link WindowAnchor}). Undefined for the other algorithms. */
  readonly anchor?: WindowAnchor;
  /** First-hit fixed windows only: see {@link FixedWindowOptions.whenExceeded}. Undefined otherwise. */
  readonly whenExceeded?: WhenExceeded;
  /** GCRA only: the most cost admitted at once (see {@link GcraOptions.burst}). Undefined otherwise. */
  readonly burst?: number;
}

/** What a counted hit that leaves a first-hit window's count above its limit does to the window. */
export type WhenExceeded = 'keep' | 'restart' | 'backoff';

/** Options shared by every algorithm. */
export interface LimitRuleOptions {
  /** Units of cost allowed per window (each call costs 1 unless it says otherwise). */
  limit: number;
  /** Window length: ms or `'1s'`, `'1m'`, `'1h'`, `'1d'`. */
  window: Duration;
  /** A name for results and headers (draft-8 policy names). Default `'<limit>/<window>'`. */
  name?: string;
}

/** Options of {@link fixedWindow}. */
export interface FixedWindowOptions extends LimitRuleOptions {
  /**
   * `'clock'`: windows aligned to the epoch, the same for every identity (a `'1m'` window runs
   * from :00 to :59). `'first-hit'`: an identity's window starts with its first counted hit and
   * lasts `window`; the first counted hit after it ends starts the next one — how
   * @nestjs/throttler, express-rate-limit and rate-limit-redis count. Default `'clock'`.
   */
  anchor?: WindowAnchor;
  /**
   * With `anchor: 'first-hit'`, what a counted hit that leaves the count above the limit (a
   * `hit()`, which counts past the limit) does to the window: `'keep'` nothing; `'restart'`
   * restarts it at that hit, so a client that keeps hitting stays limited
   * (@fastify/rate-limit's `continueExceeding`); `'backoff'` restarts it with a length of
   * `window × 2^(count − limit − 1)`, up to 10 years (`exponentialBackoff`). The count is kept
   * either way. Default `'keep'`.
   */
  whenExceeded?: WhenExceeded;
}

/** Options of {@link gcra}. */
export interface GcraOptions extends LimitRuleOptions {
  /**
   * The most cost admitted at once, by an identity that has been idle long enough (the bucket's
   * size): then `limit` per `window` at a steady pace, one unit every `window / limit`. An
   * integer from 1; `burst × window` (in ms) must stay within 2^50 so the arithmetic stays
   * exact. Default `limit`.
   */
  burst?: number;
}

/** The largest `burst × window (ms)` of a GCRA limit: keeps its integer arithmetic exact in Lua and JS. */
export const GCRA_MAX_SPAN = 2 ** 50;

const GCRA_SPAN = `a burst whose burst × window (ms) is at most 2^50 (${GCRA_MAX_SPAN}), so the arithmetic stays exact`;

/** The sliding log keeps one entry per admitted unit, so its limit is capped to bound memory. */
export const SLIDING_LOG_MAX_LIMIT = 10_000;

const LOG_LIMIT = `a positive integer up to ${SLIDING_LOG_MAX_LIMIT} (the log stores one entry per unit)`;
const ANY_LIMIT = 'a positive integer up to 2^53 - 1';
const NAME = 'a name of 1–64 letters, digits or . : / - _';

const limitSchema = (maxLimit: number, message: string) =>
  positiveInt(message).refine((n) => n <= maxLimit, { message });

const nameSchema = z.string().regex(/^[\w.:/-]{1,64}$/, { message: NAME });

const whenExceededSchema = z.enum(['keep', 'restart', 'backoff'], { message: "one of 'keep', 'restart', 'backoff'" });

const ruleSchema = (maxLimit: number, message: string, anchored: boolean, bursty: boolean) =>
  z
    .strictObject({
      ...(anchored && {
        anchor: z.enum(['clock', 'first-hit'], { message: "one of 'clock', 'first-hit'" }).default('clock'),
        whenExceeded: whenExceededSchema.optional(),
      }),
      ...(bursty && { burst: limitSchema(Number.MAX_SAFE_INTEGER, ANY_LIMIT).optional() }),
      limit: limitSchema(maxLimit, message),
      window: durationSchema(),
      name: nameSchema.optional(),
    })
    .superRefine((rule, ctx) => {
      const { anchor, whenExceeded } = rule as { anchor?: WindowAnchor; whenExceeded?: WhenExceeded };
      if (whenExceeded !== undefined && anchor !== 'first-hit') {
        ctx.addIssue({
          code: 'custom',
          path: ['whenExceeded'],
          message: "no whenExceeded without anchor: 'first-hit' (a clock-aligned window cannot restart)",
        });
      }
      if (bursty && ((rule as { burst?: number }).burst ?? rule.limit) * rule.window > GCRA_MAX_SPAN) {
        ctx.addIssue({ code: 'custom', path: ['burst'], message: GCRA_SPAN });
      }
    });

function build(algorithm: Algorithm, where: string, options: LimitRuleOptions): LimitRule {
  const [maxLimit, message] =
    algorithm === 'sliding-log' ? [SLIDING_LOG_MAX_LIMIT, LOG_LIMIT] : [Number.MAX_SAFE_INTEGER, ANY_LIMIT];
  const schema = ruleSchema(maxLimit, message, algorithm === 'fixed-window', algorithm === 'gcra');
  const parsed = parseOptions(schema, options, where) as {
    limit: number;
    window: number;
    name?: string;
    anchor?: WindowAnchor;
    whenExceeded?: WhenExceeded;
    burst?: number;
  };
  const burst = algorithm === 'gcra' ? (parsed.burst ?? parsed.limit) : undefined;
  const rate = `${parsed.limit}/${typeof options.window === 'string' ? options.window : `${parsed.window}ms`}`;
  return Object.freeze({
    algorithm,
    limit: parsed.limit,
    windowMs: parsed.window,
    name: parsed.name ?? (burst !== undefined && burst !== parsed.limit ? `${rate}:burst${burst}` : rate),
    ...(parsed.anchor && { anchor: parsed.anchor }),
    ...(parsed.anchor === 'first-hit' && { whenExceeded: parsed.whenExceeded ?? 'keep' }),
    ...(burst !== undefined && { burst }),
  });
}

/**
 * **Fixed window**: counts cost in windows of `window`, by default aligned to the epoch (a
 * `'1m'` window runs from :00 to :59 of every minute, the same on every instance), or with
 * `anchor: 'first-hit'` starting at each identity's first counted hit (the peers' semantics).
 *
 * - Accuracy: exact within a window, but a burst straddling a boundary can pass up to
 *   `2 × limit` in one window's length (the end of one window and the start of the next).
 * - Memory: one small hash per identity (window number or start, and count).
 * - Use it for: quotas (1000/day), and as the cheapest limit.
 */
export function fixedWindow(options: FixedWindowOptions): LimitRule {
  return build('fixed-window', 'fixedWindow()', options);
}

/**
 * **Sliding window** (weighted two-window counter): estimates the cost of the last `window` as
 * the current window's count plus the previous window's count weighted by how much of it is
 * still inside the sliding window.
 *
 * - Accuracy: no boundary bursts. The estimate is exact when the previous window's calls were
 *   spread evenly; when they were bunched at its end, up to `2 × limit` can pass in one
 *   window-length span (and when bunched at its start, fewer than `limit`). A burst inside one
 *   window is admitted exactly up to `limit`.
 * - Memory: O(1) — one small hash per identity (window number, current and previous count).
 * - Use it for: request rates (10/s, 100/min): smooth and cheap.
 */
export function slidingWindow(options: LimitRuleOptions): LimitRule {
  return build('sliding-window', 'slidingWindow()', options);
}

/**
 * **Sliding log**: remembers the time of every admitted unit of the last `window`
 * (a sorted set) and admits a call only if the exact count stays within the limit.
 *
 * - Accuracy: exact — never more than `limit` in any window-length span.
 * - Memory: one sorted-set entry per admitted unit, at most `limit` per identity
 *   (capped at 10,000); each check trims expired entries.
 * - Use it for: small, strict limits (5 logins per 15 minutes).
 */
export function slidingLog(options: LimitRuleOptions): LimitRule {
  return build('sliding-log', 'slidingLog()', options);
}

/**
 * **GCRA** (generic cell rate algorithm, the token bucket's exact twin): admits `burst` units at
 * once, then `limit` per `window` at a steady pace — one unit every `window / limit` — as the
 * bucket refills. It keeps one time per identity, the theoretical arrival time (when the bucket
 * will be full again), and admits a call when that time, moved on by the call's cost, is no
 * more than `burst` units ahead of now.
 *
 * - Accuracy: exact, in integer arithmetic (the time of the last change, and how far the arrival
 *   time was then ahead of it in 1/limit ms), on Redis server time; no window boundaries at all. Over any span of `t` ms it admits at most
 *   `burst + limit × t / window` units.
 * - Memory: O(1) — one small hash per identity, which expires once the bucket is full again.
 * - Use it for: APIs that allow bursts but hold a steady rate (20 at once, then 10/s), as
 *   go-redis' redis_rate and token buckets do.
 * - In results and headers its `limit` is the burst (the most `remaining` can be) and its
 *   `windowMs` the time an empty bucket takes to refill (`burst × window / limit`, rounded up),
 *   so a `q=<burst>;w=<refill>` policy states both the burst and the rate. `hit()` is not
 *   supported (a bucket cannot go below empty).
 *
 * @example
 * ```ts
 * gcra({ limit: 10, window: '1s', burst: 20 }) // 20 at once, then 10 per second
 * ```
 */
export function gcra(options: GcraOptions): LimitRule {
  return build('gcra', 'gcra()', options);
}

/**
 * The one-letter code the Lua script and the key names use for a rule's algorithm: `f` fixed
 * window on the clock, `a` fixed window anchored at the first hit, `s` sliding window, `l` log,
 * `g` GCRA.
 */
export function algorithmCode(rule: Pick<LimitRule, 'algorithm' | 'anchor'>): RuleCode {
  if (rule.algorithm === 'fixed-window') return rule.anchor === 'first-hit' ? 'a' : 'f';
  if (rule.algorithm === 'gcra') return 'g';
  return rule.algorithm === 'sliding-window' ? 's' : 'l';
}

/** See {@link algorithmCode}. */
export type RuleCode = 'f' | 'a' | 's' | 'l' | 'g';

/** The most cost a limit can ever admit at once: its burst for GCRA, else its limit. */
export function capacityOf(rule: Pick<LimitRule, 'limit' | 'burst'>): number {
  return rule.burst ?? rule.limit;
}

/**
 * A limit as given to the limiter, validated field by field however it was built (a frozen
 * object from {@link fixedWindow}, a spread copy, or one written by hand): every field the
 * limiter relies on is checked again, so a hand-made window of -1000 or 0 is a named error.
 */
export const limitRuleSchema = z
  .object(
    {
      algorithm: z.custom<Algorithm>(
        (value) =>
          value === 'fixed-window' || value === 'sliding-window' || value === 'sliding-log' || value === 'gcra',
        {
          message:
            "'fixed-window', 'sliding-window', 'sliding-log' or 'gcra': a limit made with fixedWindow(), slidingWindow(), slidingLog() or gcra()",
        },
      ),
      limit: limitSchema(Number.MAX_SAFE_INTEGER, ANY_LIMIT),
      windowMs: z.unknown(),
      name: nameSchema,
      anchor: z.enum(['clock', 'first-hit'], { message: "one of 'clock', 'first-hit'" }).optional(),
      whenExceeded: whenExceededSchema.optional(),
      burst: limitSchema(Number.MAX_SAFE_INTEGER, ANY_LIMIT).optional(),
    },
    { message: 'a limit made with fixedWindow(), slidingWindow(), slidingLog() or gcra()' },
  )
  .superRefine((rule, ctx) => {
    const window = rule.windowMs;
    if (typeof window !== 'number' || !Number.isInteger(window) || window < 1 || window > MAX_DURATION_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['windowMs'],
        message: `a whole number of milliseconds from 1 to ${MAX_DURATION_MS} (10 years)`,
      });
    }
    if (rule.algorithm === 'sliding-log' && rule.limit > SLIDING_LOG_MAX_LIMIT) {
      ctx.addIssue({ code: 'custom', path: ['limit'], message: LOG_LIMIT });
    }
    if (rule.anchor !== undefined && rule.algorithm !== 'fixed-window') {
      ctx.addIssue({ code: 'custom', path: ['anchor'], message: 'no anchor: only fixed windows have one' });
    }
    if (rule.whenExceeded !== undefined && rule.whenExceeded !== 'keep' && rule.anchor !== 'first-hit') {
      ctx.addIssue({
        code: 'custom',
        path: ['whenExceeded'],
        message: "no whenExceeded without anchor: 'first-hit' (only first-hit windows restart)",
      });
    }
    if (rule.algorithm === 'gcra') {
      if (typeof window === 'number' && (rule.burst ?? rule.limit) * window > GCRA_MAX_SPAN) {
        ctx.addIssue({ code: 'custom', path: ['burst'], message: GCRA_SPAN });
      }
    } else if (rule.burst !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['burst'], message: 'no burst: only gcra() limits have one' });
    }
  })
  .transform(
    (rule): LimitRule =>
      Object.freeze({
        algorithm: rule.algorithm,
        limit: rule.limit,
        windowMs: rule.windowMs as number,
        name: rule.name,
        ...(rule.algorithm === 'fixed-window' && { anchor: rule.anchor ?? 'clock' }),
        ...(rule.anchor === 'first-hit' && { whenExceeded: rule.whenExceeded ?? 'keep' }),
        ...(rule.algorithm === 'gcra' && { burst: rule.burst ?? rule.limit }),
      }),
  );
