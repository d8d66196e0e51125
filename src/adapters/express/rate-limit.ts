import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { InvalidOptionError } from '../../common/errors.js';
import { type RateLimitHeaderMode, rateLimitHeaders } from '../../ratelimit/headers.js';
import { ipKey } from '../../ratelimit/ip.js';
import { RateLimiter, type RateLimiterOptions } from '../../ratelimit/limiter.js';
import type { RateLimitResult } from '../../ratelimit/result.js';
import type { LimitRule } from '../../ratelimit/rules.js';
import { checkProxySetup, type ProxyChecks } from './proxy-check.js';

/** Options for {@link rateLimit}: a limiter (or what to build one from) and how to use it per request. */
export interface RateLimitMiddlewareOptions extends Partial<RateLimiterOptions> {
  /** An existing limiter to use; otherwise one is built from the limiter options (`redis`, `limits`…). */
  limiter?: RateLimiter;
  /** Who is limited. Default: the client IP (`req.ip`), IPv6 grouped by /56. */
  keyGenerator?: (req: Request) => string | Promise<string>;
  /** Units a request costs. Default 1. */
  cost?: number | ((req: Request) => number | Promise<number>);
  /**
   * The limits of this request (plans and tiers), in place of the limiter's; `undefined` keeps
   * the limiter's. Keep each tier's limits in a constant: they are validated once per array.
   * Counts are shared by algorithm and window, so a client whose plan changes keeps its count.
   */
  limitsFor?: (
    req: Request,
  ) => LimitRule | readonly LimitRule[] | undefined | Promise<LimitRule | readonly LimitRule[] | undefined>;
  /**
   * Requests for which this returns true are not limited at all. To exempt or refuse identities
   * (the key), use the limiter's `allowList` / `denyList`: a deny-listed key gets a 403 with no
   * rate-limit headers, an allow-listed one passes with none.
   */
  skip?: (req: Request, res: Response) => boolean | Promise<boolean>;
  /** Which rate-limit headers to send (`false`: none; `Retry-After` is sent on 429 regardless). Default `'draft-7'`. */
  headers?: RateLimitHeaderMode | false;
  /** Status for a refused request. Default 429. A refusal because Redis failed under `onRedisError: 'deny'` is a 503. */
  statusCode?: number;
  /** Replaces the default response for a refused request (deny-listed ones too: see `result.reason`). */
  handler?: (req: Request, res: Response, next: NextFunction, result: RateLimitResult) => void;
  /**
   * With the default key (`req.ip`), warn once per app when the proxy setup makes `req.ip` wrong
   * (`trust proxy` true, `X-Forwarded-For` while it is false, `Forwarded`, no `req.ip`), as
   * express-rate-limit's validations do: a process warning with a `code` (see `ProxyChecks`).
   * `false` turns the checks off; an object turns off those set to `false`. Default `true`.
   */
  validate?: boolean | ProxyChecks;
}

declare global {
  namespace Express {
    interface Locals {
      /** The rate-limit result of this request (set by redscale's rateLimit middleware). */
      rateLimit?: RateLimitResult;
    }
  }
}

/**
 * Express middleware over a {@link RateLimiter}: one round trip per request, headers in the
 * chosen format, 429 with `Retry-After` and a JSON body when refused. Redis failures never
 * become a 500: the limiter's `onRedisError` policy answers (with `'deny'`, a 503).
 *
 * @example
 * ```ts
 * app.use(rateLimit({ redis, prefix: 'api', limits: [slidingWindow({ limit: 100, window: '1m' })] }))
 * ```
 */
export function rateLimit(options: RateLimitMiddlewareOptions): RequestHandler & { limiter: RateLimiter } {
  const {
    limiter: given,
    keyGenerator,
    cost = 1,
    limitsFor,
    skip,
    headers = 'draft-7',
    statusCode = 429,
    handler,
    validate = true,
    ...limiterOptions
  } = options;
  if (limitsFor !== undefined && typeof limitsFor !== 'function') {
    throw new InvalidOptionError('limitsFor', limitsFor, 'a function (req) => limits | undefined', 'rateLimit()');
  }
  if (!given && !limiterOptions.limits) {
    throw new InvalidOptionError('limits', undefined, 'limits (or an existing `limiter`)', 'rateLimit()');
  }
  if (headers !== false && !['draft-6', 'draft-7', 'draft-8', 'legacy'].includes(headers)) {
    throw new InvalidOptionError(
      'headers',
      headers,
      "'draft-6', 'draft-7', 'draft-8', 'legacy' or false",
      'rateLimit()',
    );
  }
  const checks = proxyChecks(validate);
  const limiter = given ?? new RateLimiter(limiterOptions as RateLimiterOptions);
  const keyOf =
    keyGenerator ??
    ((req: Request) => {
      // Only the default key reads req.ip: a keyGenerator of your own is yours to check.
      if (checks) checkProxySetup(req, checks);
      return ipKey(req.ip);
    });

  const middleware = async function redscaleRateLimit(req: Request, res: Response, next: NextFunction) {
    try {
      if (skip && (await skip(req, res))) return next();
      const units = typeof cost === 'function' ? await cost(req) : cost;
      const limits = limitsFor ? await limitsFor(req) : undefined;
      const result = await limiter.consume(await keyOf(req), { cost: units, ...(limits && { limits }) });
      res.locals.rateLimit = result;
      if (headers) res.set(rateLimitHeaders(result, headers));
      if (result.allowed) return next();
      if (result.reason === 'deny-list') {
        // Refused by identity, not by a count: forbidden, and no wait would help.
        if (handler) return handler(req, res, next, result);
        return res.status(403).json({ error: 'Forbidden' });
      }
      res.set('Retry-After', String(Math.max(1, Math.ceil(result.retryAfter / 1_000))));
      if (handler) return handler(req, res, next, result);
      const status = result.reason === 'redis-error' ? 503 : statusCode;
      res.status(status).json({
        error: status === 503 ? 'Service Unavailable' : 'Too Many Requests',
        retryAfter: Math.max(1, Math.ceil(result.retryAfter / 1_000)),
      });
    } catch (error) {
      // Only the caller's own code (keyGenerator, cost, skip) or bad input throws here.
      next(error);
    }
  };
  return Object.assign(middleware, { limiter });
}

const CHECK_NAMES = ['trustProxy', 'xForwardedFor', 'forwarded', 'ip'];

/** `validate` as the checks to run, `undefined` for none; anything else is an InvalidOptionError. */
function proxyChecks(validate: unknown): ProxyChecks | undefined {
  if (validate === false) return undefined;
  if (validate === true) return {};
  const entries = validate !== null && typeof validate === 'object' ? Object.entries(validate) : undefined;
  if (!entries?.every(([name, on]) => CHECK_NAMES.includes(name) && typeof on === 'boolean')) {
    throw new InvalidOptionError(
      'validate',
      validate,
      `true, false, or an object of booleans named ${CHECK_NAMES.join(', ')}`,
      'rateLimit()',
    );
  }
  return validate as ProxyChecks;
}
