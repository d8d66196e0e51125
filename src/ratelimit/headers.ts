import type { RateLimitResult } from './result.js';

/** Which rate-limit headers to send. */
export type RateLimitHeaderMode = 'draft-6' | 'draft-7' | 'draft-8' | 'legacy';

/** Options for {@link rateLimitHeaders}. */
export interface RateLimitHeaderOptions {
  /**
   * `legacy` only: `X-RateLimit-Reset` as epoch seconds (express-rate-limit, GitHub) or as
   * seconds from now (@nestjs/throttler, @fastify/rate-limit). Default `'epoch-seconds'`.
   */
  legacyReset?: 'epoch-seconds' | 'delta-seconds';
}

/**
 * The headers that describe a result, by the IETF RateLimit drafts or the legacy
 * `X-RateLimit-*` set, plus `Retry-After` (seconds) when the call was refused.
 *
 * - `draft-6`: `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, `RateLimit-Policy`
 * - `draft-7`: `RateLimit: limit=L, remaining=R, reset=S` and `RateLimit-Policy: L;w=W`
 * - `draft-8`: `RateLimit: "name";r=R;t=S` and `RateLimit-Policy: "name";q=L;w=W`, one item per limit
 * - `legacy`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
 *
 * Times are computed from the clock that decided (Redis server time), so an instance's clock
 * skew does not shift them. Policies list every limit; single values describe the deciding one.
 * A result answered by an allow or deny list (`reason` `'allow-list'` / `'deny-list'`) has no
 * headers at all.
 */
export function rateLimitHeaders(
  result: RateLimitResult,
  mode: RateLimitHeaderMode,
  options: RateLimitHeaderOptions = {},
): Record<string, string> {
  const headers: Record<string, string> = {};
  // A list answered, not a count: there is nothing to describe, and for a deny-listed client no
  // wait helps, so no Retry-After either.
  if (result.reason === 'allow-list' || result.reason === 'deny-list') return headers;
  // A client that trusts a reset must not come back before a retry can succeed: a sliding
  // window can refuse past its own window's end, and a block can outlast every window. So when
  // refused, a reset — the call's, or that of a limit with nothing left — is no earlier than
  // Retry-After.
  const retryAt = result.allowed ? 0 : result.decidedAt + result.retryAfter;
  const resetAt = Math.max(result.resetAt, retryAt);
  const reset = secondsUntil(resetAt, result.decidedAt);
  const limitResetAt = (limit: { resetAt: number; remaining: number }) =>
    limit.remaining === 0 ? Math.max(limit.resetAt, retryAt) : limit.resetAt;
  const limits = result.limits.length
    ? result.limits
    : [
        {
          name: 'default',
          limit: result.limit,
          remaining: result.remaining,
          windowMs: result.windowMs,
          resetAt: result.resetAt,
        },
      ];
  const policy = limits.map((limit) => `${limit.limit};w=${Math.ceil(limit.windowMs / 1_000)}`).join(', ');
  switch (mode) {
    case 'draft-6':
      headers['RateLimit-Policy'] = policy;
      headers['RateLimit-Limit'] = String(result.limit);
      headers['RateLimit-Remaining'] = String(result.remaining);
      headers['RateLimit-Reset'] = String(reset);
      break;
    case 'draft-7':
      headers['RateLimit-Policy'] = policy;
      headers.RateLimit = `limit=${result.limit}, remaining=${result.remaining}, reset=${reset}`;
      break;
    case 'draft-8':
      headers['RateLimit-Policy'] = limits
        .map((limit) => `"${limit.name}";q=${limit.limit};w=${Math.ceil(limit.windowMs / 1_000)}`)
        .join(', ');
      headers.RateLimit = limits
        .map((limit) => `"${limit.name}";r=${limit.remaining};t=${secondsUntil(limitResetAt(limit), result.decidedAt)}`)
        .join(', ');
      break;
    case 'legacy':
      headers['X-RateLimit-Limit'] = String(result.limit);
      headers['X-RateLimit-Remaining'] = String(result.remaining);
      headers['X-RateLimit-Reset'] =
        options.legacyReset === 'delta-seconds' ? String(reset) : String(Math.ceil(resetAt / 1_000));
      break;
  }
  if (!result.allowed) headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfter / 1_000)));
  return headers;
}

function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1_000));
}
