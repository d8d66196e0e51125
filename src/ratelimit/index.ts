export type { BlockMode } from './algorithms.js';
export { type RateLimitHeaderMode, type RateLimitHeaderOptions, rateLimitHeaders } from './headers.js';
export { ipKey } from './ip.js';
export {
  type ConsumeOptions,
  type IdentityList,
  RateLimiter,
  type RateLimiterOptions,
  type RedisErrorPolicy,
} from './limiter.js';
export type { LimitState, RateLimitReason, RateLimitResult, RateLimitSource } from './result.js';
export {
  type Algorithm,
  type FixedWindowOptions,
  fixedWindow,
  GCRA_MAX_SPAN,
  type GcraOptions,
  gcra,
  type LimitRule,
  type LimitRuleOptions,
  SLIDING_LOG_MAX_LIMIT,
  slidingLog,
  slidingWindow,
  type WhenExceeded,
  type WindowAnchor,
} from './rules.js';
export type { RateLimiterEvents, RateLimiterStats } from './stats.js';
