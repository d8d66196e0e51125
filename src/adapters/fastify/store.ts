import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import type { RedisLike } from '../../client/types.js';
import type { Duration } from '../../common/duration.js';
import { InvalidOptionError, type RedscaleError } from '../../common/errors.js';
import { MAX_DURATION_MS, parseOptions, prefixSchema, redisClientSchema } from '../../common/options.js';
import {
  type Count,
  type CounterAnchor,
  type CounterErrorPolicy,
  type CounterExceeded,
  type CounterOptions,
  counterFields,
  WindowCounter,
} from '../shared/counter.js';
import { keySegment } from '../shared/keys.js';

/** Options for {@link redscaleStore}. */
export interface FastifyStoreOptions {
  /** Key namespace. Default `'redscale:frl'`. */
  prefix?: string;
  /**
   * Where a client's window starts: `'first-hit'` (its first request, then `timeWindow` long,
   * as @fastify/rate-limit's own stores count) or `'clock'` (windows aligned to the epoch).
   * Default `'first-hit'`.
   */
  anchor?: CounterAnchor;
  /**
   * When Redis fails or does not answer within `timeout`: `'error'` passes the error to
   * @fastify/rate-limit, whose `skipOnError` decides (`false`, its default: the error reaches
   * Fastify; `true`: the request passes unlimited) — as with its own Redis store; `'memory'`
   * counts in this process until Redis is back; `'allow'` reports one hit. Default `'error'`.
   */
  onRedisError?: CounterErrorPolicy;
  /** Longest a Redis call may take. Default `'250ms'`. */
  timeout?: Duration;
  /** Called with every Redis failure the store absorbed or passed on. */
  onError?: (error: RedscaleError) => void;
}

type Callback = (error: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * What @fastify/rate-limit passes to the store's constructor (its global options) and to
 * `child()` (a route's merged options, with `routeInfo`); its types declare Fastify's
 * RouteOptions (`method`, `url`). Only what the store reads is listed.
 */
interface PluginOptions {
  routeInfo?: { method?: unknown; url?: unknown };
  method?: unknown;
  url?: unknown;
  timeWindow?: unknown;
  continueExceeding?: unknown;
  exponentialBackoff?: unknown;
}

/** The store @fastify/rate-limit constructs with `new Store(options)`. */
export interface FastifyRateLimitStore {
  /** Counts one request for `key` in its `timeWindow` (ms) and reports the count and ms left. */
  incr(key: string | number, callback: Callback, timeWindow: number, max: number): void;
  /** Reports the count and ms left without counting (`{ increment: false }`). */
  read(key: string | number, callback: Callback, timeWindow: number, max: number): void;
  /** A store with its own keys for a route with its own limits. */
  child(routeOptions: PluginOptions): FastifyRateLimitStore;
}

const optionsSchema = z.strictObject({
  prefix: prefixSchema.default('redscale:frl'),
  ...counterFields,
});

const WHERE = 'redscaleStore()';
const PLUGIN = '@fastify/rate-limit with redscaleStore()';

/**
 * A store class for `@fastify/rate-limit`, which builds stores itself with `new Store(options)`:
 * this returns the class, closed over your Redis client.
 *
 * ```ts
 * await app.register(rateLimit, { max: 100, timeWindow: '1 minute', store: redscaleStore(redis) })
 * ```
 *
 * Counts as the plugin's own stores do — a client's window starts at its first request and lasts
 * `timeWindow`, and counting continues past `max` (bans depend on it) — in one round trip per
 * request, with Redis server time and Cluster-safe keys; `read` backs `{ increment: false }`, and
 * each route with its own limits gets its own keys through `child()`. `continueExceeding` (a
 * request past `max` restarts the window) and `exponentialBackoff` (it restarts it doubled for
 * each further request) count as the plugin's own stores do; both need `anchor: 'first-hit'`.
 *
 * @throws InvalidOptionError when `redis` is not an ioredis client or an option is invalid.
 */
export function redscaleStore(
  redis: RedisLike,
  options: FastifyStoreOptions = {},
): new (
  options?: unknown,
) => FastifyRateLimitStore {
  parseOptions(z.strictObject({ redis: redisClientSchema }), { redis }, WHERE);
  const parsed = parseOptions(optionsSchema, options, WHERE);
  const base: CounterOptions = { ...parsed, redis, onError: parsed.onError };

  class RedscaleFastifyStore implements FastifyRateLimitStore {
    readonly #options: CounterOptions;
    readonly #exceeded: CounterExceeded['mode'] | undefined;
    // @fastify/rate-limit passes the window and max on every call (they may depend on the request).
    readonly #counters = new LRUCache<string, WindowCounter>({ max: 1_000 });

    constructor(pluginOptions?: unknown, prefix = base.prefix) {
      this.#options = { ...base, prefix };
      this.#exceeded = whenExceeded(pluginOptions as PluginOptions | undefined, base.anchor);
    }

    incr(key: string | number, callback: Callback, timeWindow: number, max: number): void {
      this.#answer(callback, () => this.#counter(timeWindow, max).hit(String(key)));
    }

    read(key: string | number, callback: Callback, timeWindow: number, max: number): void {
      this.#answer(callback, () => this.#counter(timeWindow, max).peek(String(key)));
    }

    child(routeOptions: PluginOptions): FastifyRateLimitStore {
      const method = String(routeOptions.routeInfo?.method ?? routeOptions.method);
      const url = String(routeOptions.routeInfo?.url ?? routeOptions.url);
      return new RedscaleFastifyStore(routeOptions, `${this.#options.prefix}:${keySegment(`${method}${url}`)}`);
    }

    #counter(timeWindow: number, max: number): WindowCounter {
      // Only a window that reacts to the limit needs one counter per limit (same keys either way).
      const exceeded = this.#exceeded && { mode: this.#exceeded, limit: max };
      const id = exceeded ? `${timeWindow}:${max}` : String(timeWindow);
      let counter = this.#counters.get(id);
      if (!counter) {
        counter = new WindowCounter(this.#options, timeWindow, `${PLUGIN} (timeWindow)`, exceeded);
        this.#counters.set(id, counter);
      }
      return counter;
    }

    #answer(callback: Callback, count: () => Promise<Count | undefined>): void {
      let pending: Promise<Count | undefined>;
      try {
        pending = count();
      } catch (error) {
        callback(error as Error);
        return;
      }
      pending.then(
        (counted) => callback(null, counted ? { current: counted.totalHits, ttl: counted.resetInMs } : NOTHING),
        (error: Error) => callback(error),
      );
    }
  }
  return RedscaleFastifyStore;
}

// What the plugin's own stores report for a client with no count (`read`).
const NOTHING = Object.freeze({ current: 0, ttl: 0 });

/**
 * What a request past `max` does to the window, from the plugin's options (global, or a route's
 * merged ones): `continueExceeding` restarts it (it wins over `exponentialBackoff`, as in the
 * plugin's own stores), `exponentialBackoff` restarts it doubled. Checked where the plugin builds
 * the store, at registration: an epoch-aligned window cannot restart, a window of 0 would never
 * count anything, and one over 10 years (every redscale duration's bound) would fail every request.
 */
function whenExceeded(options: PluginOptions | undefined, anchor: CounterAnchor): CounterExceeded['mode'] | undefined {
  const window = options?.timeWindow;
  if (typeof window === 'number' && (!Number.isInteger(window) || window < 1 || window > MAX_DURATION_MS)) {
    throw new InvalidOptionError(
      'timeWindow',
      window,
      `a window from 1 ms (0 would never count anything) to ${MAX_DURATION_MS} ms (10 years)`,
      PLUGIN,
    );
  }
  const mode =
    options?.continueExceeding === true ? 'restart' : options?.exponentialBackoff === true ? 'backoff' : undefined;
  if (mode && anchor === 'clock') {
    throw new InvalidOptionError(
      mode === 'restart' ? 'continueExceeding' : 'exponentialBackoff',
      true,
      "false or unset with redscaleStore({ anchor: 'clock' }): an epoch-aligned window cannot restart " +
        "(use the default anchor, 'first-hit')",
      PLUGIN,
    );
  }
  return mode;
}
