import type { RedscaleError } from '../common/errors.js';
import type { RateLimitResult } from './result.js';

/** What a limiter has decided since it was created; `RateLimiter.stats()` returns a snapshot. */
export interface RateLimiterStats {
  /** Calls admitted (`consume`, `peek`, `hit`), by whoever answered. */
  allowed: number;
  /** Calls refused because a limit had no room (`reason: 'limit'`). */
  limited: number;
  /** Calls refused because the identity is blocked (`blockFor`; `reason: 'blocked'`). */
  blocked: number;
  /** Calls refused in this process by the local deny cache, without a round trip (`reason: 'local-block'`). */
  localBlocked: number;
  /** Calls answered without Redis because it failed or its circuit was open (memory fallback or policy). */
  fallbacks: number;
  /** Redis calls that failed or timed out (one per `redis-error` event: both come from one place). */
  redisErrors: number;
  /** Checks not sent because their node's circuit breaker was open. */
  breakerSkips: number;
  /** Times a node's circuit breaker opened. */
  breakerOpens: number;
}

/** Every counter at zero. */
export function emptyLimiterStats(): RateLimiterStats {
  return {
    allowed: 0,
    limited: 0,
    blocked: 0,
    localBlocked: 0,
    fallbacks: 0,
    redisErrors: 0,
    breakerSkips: 0,
    breakerOpens: 0,
  };
}

/** Events a RateLimiter emits (listen with `limiter.on(name, listener)`); built only when listened to. */
export interface RateLimiterEvents {
  /** Every answer of `consume`, `peek` and `hit` (`result.reason` and `result.source` say what and who). */
  decision: [{ id: string; operation: 'consume' | 'peek' | 'hit'; result: RateLimitResult }];
  /** A Redis call failed or timed out: one event per `stats().redisErrors`. */
  'redis-error': [{ error: RedscaleError }];
  /** A node's circuit breaker opened (Redis is skipped there) or closed again. */
  breaker: [{ node: string; state: 'open' | 'closed' }];
}
