import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { RateLimiter } from '../../ratelimit/limiter.js';
import type { RateLimitResult } from '../../ratelimit/result.js';
import { fixedWindow } from '../../ratelimit/rules.js';

/** Options for {@link redscaleStore}. */
export interface FastifyStoreOptions {
  /** Key namespace. Default `'redscale:frl'`. */
  prefix?: string;
  /** When Redis fails: `'memory'` counts in this process until it is back, `'allow'` reports one hit. Default `'memory'`. */
  onRedisError?: 'memory' | 'allow';
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
}

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * What @fastify/rate-limit passes to `child()`: at run time its merged route params, with
 * `routeInfo`; its types declare Fastify's RouteOptions (`method`, `url`). Both are accepted.
 */
interface RouteOptions {
  routeInfo?: { method: string; url: string };
  method?: unknown;
  url?: unknown;
}

/** The store @fastify/rate-limit constructs with `new Store(options)`. */
export interface FastifyRateLimitStore {
  incr(key: string, callback: Callback, timeWindow: number, max: number): void;
  read(key: string, callback: Callback, timeWindow: number, max: number): void;
  child(routeOptions: RouteOptions): FastifyRateLimitStore;
}

/**
 * A store class for `@fastify/rate-limit`, which builds stores itself with `new Store(options)`:
 * this returns the class, closed over your Redis client.
 *
 * ```ts
 * await app.register(rateLimit, { max: 100, timeWindow: '1 minute', store: redscaleStore(redis) })
 * ```
 *
 * One round trip per request, Redis server time, Cluster-safe keys; it keeps counting past
 * `max` so `ban` works, `read` backs `{ increment: false }`, and each route with its own limits
 * gets its own keys through `child()`. (`continueExceeding` and `exponentialBackoff` are not
 * supported: the window is fixed.)
 */
export function redscaleStore(
  redis: RedisLike,
  options: FastifyStoreOptions = {},
): new (
  options?: unknown,
) => FastifyRateLimitStore {
  const base = options.prefix ?? 'redscale:frl';
  class RedscaleFastifyStore implements FastifyRateLimitStore {
    readonly #prefix: string;
    readonly #limiters = new Map<number, RateLimiter>();

    constructor(_pluginOptions?: unknown, prefix = base) {
      this.#prefix = prefix;
    }

    incr(key: string, callback: Callback, timeWindow: number): void {
      this.#answer(this.#limiter(timeWindow).hit(key), callback);
    }

    read(key: string, callback: Callback, timeWindow: number): void {
      this.#answer(this.#limiter(timeWindow).peek(key), callback);
    }

    child(routeOptions: RouteOptions): FastifyRateLimitStore {
      const method = routeOptions.routeInfo?.method ?? String(routeOptions.method);
      const url = routeOptions.routeInfo?.url ?? String(routeOptions.url);
      return new RedscaleFastifyStore(undefined, `${this.#prefix}:${method}${url}`);
    }

    /** @fastify/rate-limit passes the window on every call; one counter limiter per window. */
    #limiter(timeWindow: number): RateLimiter {
      let limiter = this.#limiters.get(timeWindow);
      if (!limiter) {
        limiter = new RateLimiter({
          redis,
          prefix: this.#prefix,
          limits: fixedWindow({ limit: Number.MAX_SAFE_INTEGER, window: timeWindow }),
          onRedisError: options.onRedisError ?? 'memory',
          localDenyCache: false,
          ...(options.timeout !== undefined && { timeout: options.timeout }),
        });
        this.#limiters.set(timeWindow, limiter);
      }
      return limiter;
    }

    #answer(pending: Promise<RateLimitResult>, callback: Callback): void {
      pending.then(
        (result) => {
          const counted = result.limits[0];
          callback(null, {
            current: counted ? counted.used : 1,
            ttl: Math.max(0, (counted ? counted.resetAt : result.resetAt) - result.decidedAt),
          });
        },
        (error: Error) => callback(error),
      );
    }
  }
  return RedscaleFastifyStore;
}
