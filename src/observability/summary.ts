import type { Cache } from '../cache/cache.js';
import type { CacheStats } from '../cache/stats.js';
import type { Lock } from '../lock/lock.js';
import type { LockStats } from '../lock/stats.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { RateLimiterStats } from '../ratelimit/stats.js';

/** A circuit breaker's state, per Redis node address. */
export type BreakerStates = Record<string, 'closed' | 'open' | 'half-open'>;

/** The primitives a {@link primitivesReport} covers, each under a name of your choosing. */
export interface ReportedPrimitives {
  /** Caches to report, by name. */
  caches?: Record<string, Cache>;
  /** Rate limiters to report, by name. */
  limiters?: Record<string, RateLimiter>;
  /** Locks to report, by name. */
  locks?: Record<string, Lock>;
}

/** What {@link primitivesReport} returns: counters, the cache hit rate and breaker states, JSON-ready. */
export interface PrimitivesReport {
  /** Each cache's hit rate, breaker states and counters. */
  caches: Record<string, { hitRate: number | null; circuitBreakers: BreakerStates; stats: CacheStats }>;
  /** Each limiter's breaker states and counters. */
  limiters: Record<string, { circuitBreakers: BreakerStates; stats: RateLimiterStats }>;
  /** Each lock's counters. */
  locks: Record<string, { stats: LockStats }>;
}

/**
 * The state of a process's primitives for a health or status endpoint: each cache's hit rate,
 * each cache's and limiter's circuit breaker per Redis node, and every counter. Costs no I/O.
 */
export function primitivesReport(primitives: ReportedPrimitives): PrimitivesReport {
  const report: PrimitivesReport = { caches: {}, limiters: {}, locks: {} };
  for (const [name, cache] of Object.entries(primitives.caches ?? {})) {
    report.caches[name] = { hitRate: cache.hitRate(), circuitBreakers: cache.circuitBreakers(), stats: cache.stats() };
  }
  for (const [name, limiter] of Object.entries(primitives.limiters ?? {})) {
    report.limiters[name] = { circuitBreakers: limiter.circuitBreakers(), stats: limiter.stats() };
  }
  for (const [name, lock] of Object.entries(primitives.locks ?? {})) report.locks[name] = { stats: lock.stats() };
  return report;
}
