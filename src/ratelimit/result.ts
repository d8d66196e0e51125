import type { RedscaleError } from '../common/errors.js';
import type { Decision } from './algorithms.js';
import { type Algorithm, capacityOf, type LimitRule } from './rules.js';

/** Why a call was answered the way it was. */
export type RateLimitReason =
  /** Every limit admitted the cost. */
  | 'allowed'
  /** A limit refused: `refusedBy` names it. */
  | 'limit'
  /** The identity is blocked (`blockFor`) after an earlier refusal. */
  | 'blocked'
  /** Refused in this process without asking Redis: a recent answer said refused until later. */
  | 'local-block'
  /** Redis failed and the `onRedisError` policy `'allow'` or `'deny'` answered. */
  | 'redis-error'
  /** The identity is on the limiter's `allowList`: admitted, nothing counted, no round trip. */
  | 'allow-list'
  /** The identity is on the limiter's `denyList`: refused, nothing counted, no round trip. */
  | 'deny-list';

/** Who answered. */
export type RateLimitSource = 'redis' | 'memory' | 'local' | 'policy';

/** One limit's state after a call. */
export interface LimitState {
  /** The limit's name (`LimitRule.name`). */
  name: string;
  /** Its algorithm. */
  algorithm: Algorithm;
  /** Units of cost it allows per window (GCRA: its burst, the most it admits at once). */
  limit: number;
  /** Its window, ms (GCRA: the time an empty bucket takes to refill, `burst × window / limit`). */
  windowMs: number;
  /** Whether this limit had room for the cost. */
  allowed: boolean;
  /** Units left in the window after this call (0 when over). */
  remaining: number;
  /** Units counted in the window after this call (may exceed `limit` for `hit()`). */
  used: number;
  /**
   * When this limit's window ends (sliding log: when every counted call has left it; GCRA: when
   * the bucket is full again, `decidedAt` if it is), epoch ms.
   * A refused call may have to wait longer (`retryAfter`: a sliding window's weight, a block);
   * {@link rateLimitHeaders} never announces a reset before then.
   */
  resetAt: number;
  /** When this limit refused: ms until it would admit the same cost; otherwise 0. */
  retryAfter: number;
}

/**
 * The answer to a rate-limit call. The top-level `limit`, `remaining`, `resetAt` and `windowMs`
 * are those of the deciding limit: the one that refused, or else the one with the least room.
 */
export interface RateLimitResult {
  /** Whether the call was admitted (for `hit()`: whether it stayed within every limit). */
  allowed: boolean;
  /** Why it was answered so. */
  reason: RateLimitReason;
  /** The deciding limit's limit. */
  limit: number;
  /** Units the deciding limit has left after this call. */
  remaining: number;
  /** When the deciding limit's window ends, epoch ms (see `LimitState.resetAt`). */
  resetAt: number;
  /** The deciding limit's window, ms. */
  windowMs: number;
  /** When refused: ms until a retry can succeed. 0 when allowed, and for `'deny-list'` (no wait helps). */
  retryAfter: number;
  /** The name of the limit that refused, when `reason` is `'limit'` (or `'local-block'`, remembering such a refusal). */
  refusedBy: string | undefined;
  /** Every limit, in the order they were configured (empty when a policy or a list answered). */
  limits: LimitState[];
  /** Who answered: Redis, the in-memory backend or fallback, the local deny cache, or a policy (`onRedisError`, allow and deny lists). */
  source: RateLimitSource;
  /** The clock that decided (Redis server time, or the local clock), epoch ms. */
  decidedAt: number;
  /** Set when Redis failed (or the circuit is open) and a fallback answered. */
  error?: RedscaleError;
}

const REASONS = ['allowed', 'limit', 'blocked'] as const;

/** Turns a backend's decision into a result. */
export function toResult(decision: Decision, rules: readonly LimitRule[], source: RateLimitSource): RateLimitResult {
  const now = decision.now;
  const retryAfter = decision.allowed ? 0 : decision.retryAfter;
  const limits: LimitState[] = [];
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i] as LimitRule;
    const verdict = decision.limits[i];
    const used = verdict?.used ?? 0;
    const limit = capacityOf(rule);
    const windowMs = reportedWindow(rule);
    const remaining = Math.max(0, limit - used);
    const allowed = verdict?.allowed ?? true;
    const resetAt = verdict?.resetAt ?? now + windowMs;
    limits.push({
      name: rule.name,
      algorithm: rule.algorithm,
      limit,
      windowMs,
      allowed,
      remaining,
      used,
      resetAt,
      retryAfter: verdict?.retryAfter ?? 0,
    });
  }
  const reason = REASONS[decision.reason];
  const deciding = decidingLimit(limits, reason === 'limit');
  return {
    allowed: decision.allowed,
    reason,
    limit: deciding.limit,
    remaining: deciding.remaining,
    resetAt: deciding.resetAt,
    windowMs: deciding.windowMs,
    retryAfter,
    refusedBy: reason === 'limit' ? deciding.name : undefined,
    limits,
    source,
    decidedAt: now,
  };
}

/** A limit's window as results report it: for GCRA, the time an empty bucket takes to refill. */
function reportedWindow(rule: LimitRule): number {
  return rule.burst === undefined ? rule.windowMs : Math.ceil((rule.burst * rule.windowMs) / rule.limit);
}

/** The refusing limit that keeps the caller waiting longest, or else the one with the least room. */
function decidingLimit(limits: readonly LimitState[], refused: boolean): LimitState {
  let best = limits[0] as LimitState;
  for (const state of limits) {
    if (refused) {
      if (!state.allowed && (best.allowed || state.retryAfter > best.retryAfter)) best = state;
    } else if (state.remaining < best.remaining) {
      best = state;
    }
  }
  return best;
}

/**
 * A result for an identity on an allow or deny list: nothing was counted, so it describes the
 * tightest limit untouched (`remaining` its full capacity when allowed, 0 when refused).
 */
export function listResult(list: 'allow-list' | 'deny-list', rules: readonly LimitRule[]): RateLimitResult {
  const tightest = rules.reduce((a, b) => (capacityOf(b) < capacityOf(a) ? b : a));
  const now = Date.now();
  const allowed = list === 'allow-list';
  return {
    allowed,
    reason: list,
    limit: capacityOf(tightest),
    remaining: allowed ? capacityOf(tightest) : 0,
    resetAt: now,
    windowMs: reportedWindow(tightest),
    retryAfter: 0,
    refusedBy: undefined,
    limits: [],
    source: 'policy',
    decidedAt: now,
  };
}

/** A result for when Redis failed and the policy, not a count, answers. */
export function policyResult(
  allowed: boolean,
  rules: readonly LimitRule[],
  error: RedscaleError,
  retryAfter: number,
): RateLimitResult {
  const tightest = rules.reduce((a, b) => (capacityOf(b) < capacityOf(a) ? b : a));
  const now = Date.now();
  return {
    allowed,
    reason: 'redis-error',
    limit: capacityOf(tightest),
    remaining: allowed ? capacityOf(tightest) : 0,
    resetAt: now + (allowed ? reportedWindow(tightest) : retryAfter),
    windowMs: reportedWindow(tightest),
    retryAfter: allowed ? 0 : retryAfter,
    refusedBy: undefined,
    limits: [],
    source: 'policy',
    decidedAt: now,
    error,
  };
}
