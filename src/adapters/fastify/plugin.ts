import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { Cache } from '../../cache/cache.js';
import type { CacheOptions } from '../../cache/options.js';
import { closeClient } from '../../client/close.js';
import { type CreateClientOptions, createClient } from '../../client/create-client.js';
import type { RedisLike } from '../../client/types.js';
import { RedisHealth, type RedisHealthOptions } from '../../health/redis-health.js';
import { Lock } from '../../lock/lock.js';
import type { LockOptions } from '../../lock/options.js';
import { primitivesReport } from '../../observability/summary.js';
import { type RateLimitHeaderMode, rateLimitHeaders } from '../../ratelimit/headers.js';
import { ipKey } from '../../ratelimit/ip.js';
import { RateLimiter, type RateLimiterOptions } from '../../ratelimit/limiter.js';
import type { LimitRule } from '../../ratelimit/rules.js';
import { keySegment } from '../shared/keys.js';
import { addHttpCache, type RouteHttpCache } from './http-cache.js';
import { listed, type RequestList, routeLists } from './lists.js';
import { parsePluginOptions, parseRouteLimit } from './options.js';
import { type RateLimitHooks, refuse } from './refusal.js';

/**
 * Route-level rate limiting: `app.get('/x', { config: { redscale: { limits } } }, handler)`. The
 * hooks ({@link RateLimitHooks}) given here replace the plugin's for this route.
 */
export interface RouteRateLimit extends RateLimitHooks {
  /** The route's limits, checked and counted together (see `RateLimiter`). */
  limits: LimitRule | LimitRule[];
  /** Who is limited. Default: the client IP, IPv6 grouped by /56. */
  key?: (request: FastifyRequest) => string | number | Promise<string | number>;
  /** Units a request costs. Default 1. */
  cost?: number | ((request: FastifyRequest) => number | Promise<number>);
  /** After a refusal, block the client for this long (see `RateLimiter`'s `blockFor`). Default 0. */
  blockFor?: RateLimiterOptions['blockFor'];
  /**
   * The limits of this request (plans and tiers), in place of `limits`; `undefined` keeps
   * `limits`. Keep each tier's limits in a constant (validated once per array). Counts are shared
   * by algorithm and window, so a client whose plan changes keeps its count.
   */
  limitsFor?: (
    request: FastifyRequest,
  ) => LimitRule | readonly LimitRule[] | undefined | Promise<LimitRule | readonly LimitRule[] | undefined>;
  /** Keys, or `(request, key) => boolean | Promise<boolean>`, that skip this route's limit (no count, no headers). Default the plugin's `rateLimit.allowList`. */
  allowList?: RequestList;
  /** Keys, or a predicate like `allowList`, refused at once with a 403 (checked first). Default the plugin's `rateLimit.denyList`. */
  denyList?: RequestList;
}

/** Options for the redscale Fastify plugin. */
export interface RedscalePluginOptions {
  /** Your client; or give `url` and the plugin creates one (and closes it with the app). */
  redis?: RedisLike;
  /** A URL or `createClient` options to create the client from (closed with the app). */
  url?: string | CreateClientOptions;
  /** Namespace for every primitive's keys. Default `'redscale'`. */
  prefix?: string;
  /** Rate-limit defaults for routes with `config.redscale`. */
  rateLimit?: Pick<RateLimiterOptions, 'onRedisError' | 'timeout' | 'localDenyCache'> &
    RateLimitHooks & {
      /** Which headers to send (`false`: none; `retry-after` is sent on 429 regardless). Default `'draft-7'`. */
      headers?: RateLimitHeaderMode | false;
      /**
       * Keys, or `(request, key) => boolean | Promise<boolean>` (as @fastify/rate-limit's
       * `allowList`), that skip every route limit: nothing counted, no Redis, no headers.
       */
      allowList?: RequestList;
      /** Keys, or a predicate like `allowList`, refused at once with a 403 and no rate-limit headers; checked before `allowList`. */
      denyList?: RequestList;
    };
  /** Options for `app.redscale.cache`; `false` for no cache. */
  cache?: Omit<CacheOptions, 'redis'> | false;
  /** Options for `app.redscale.lock`. */
  lock?: Omit<LockOptions, 'redis'>;
  /** Options for `app.redscale.health`, and `routes` to serve `<prefix>/live`, `<prefix>/ready` and `<prefix>/stats`. */
  health?: Omit<RedisHealthOptions, 'redis'> & { routes?: { prefix?: string } | false };
}

/** What the plugin decorates the instance with. */
export interface RedscaleDecoration {
  /** The client the plugin uses (yours, or the one it created). */
  redis: RedisLike;
  /** The cache, or `undefined` with `cache: false`. */
  cache: Cache | undefined;
  /** Distributed locks in the plugin's namespace. */
  lock: Lock;
  /** The Redis health report behind `/health/ready`. */
  health: RedisHealth;
  /** Builds a limiter in the plugin's namespace (what route limits use). */
  limiter(options: Omit<RateLimiterOptions, 'redis'>): RateLimiter;
}

declare module 'fastify' {
  interface FastifyInstance {
    redscale: RedscaleDecoration;
  }
  interface FastifyContextConfig {
    /** redscale's route-level rate limit. */
    redscale?: RouteRateLimit;
    /** redscale's route-level HTTP response caching (uses `app.redscale.cache` unless `cache` is given). */
    httpCache?: RouteHttpCache;
  }
}

async function redscalePlugin(app: FastifyInstance, given: RedscalePluginOptions): Promise<void> {
  const options = parsePluginOptions(given);
  const redis = options.redis ?? createClient(options.url);
  const { prefix } = options;
  const { headers, allowList, denyList, errorResponseBuilder, onExceeding, onExceeded, skipOnError, ...limitDefaults } =
    options.rateLimit;
  const pluginHooks: RateLimitHooks = { errorResponseBuilder, onExceeding, onExceeded, skipOnError };
  const cache = options.cache === false ? undefined : new Cache({ ...options.cache, redis, prefix });
  const { routes: healthRoutes = false, ...healthOptions } = options.health ?? {};
  const health = new RedisHealth({ ...healthOptions, redis, prefix });
  const decoration: RedscaleDecoration = {
    redis,
    cache,
    lock: new Lock({ ...options.lock, redis, prefix }),
    health,
    limiter: (limiterOptions) =>
      new RateLimiter({
        ...(limitDefaults.onRedisError && { onRedisError: limitDefaults.onRedisError }),
        ...(limitDefaults.timeout !== undefined && { timeout: limitDefaults.timeout }),
        ...(limitDefaults.localDenyCache !== undefined && { localDenyCache: limitDefaults.localDenyCache }),
        ...limiterOptions,
        redis,
      }),
  };
  app.decorate('redscale', decoration);
  // The route limiters by route, for `/stats`.
  const routeLimiters: Record<string, RateLimiter> = {};

  app.addHook('onRoute', (route: RouteOptions) => addHttpCache(route, cache));
  app.addHook('onRoute', (route: RouteOptions) => {
    const given = (route.config as { redscale?: RouteRateLimit } | undefined)?.redscale;
    if (given === undefined) return;
    const methods = Array.isArray(route.method) ? route.method.join(',') : route.method;
    const config = parseRouteLimit(given, `${methods} ${route.url}`);
    const hooks = routeHooks(pluginHooks, config);
    const limiter = decoration.limiter({
      prefix: `${prefix}:route:${keySegment(`${methods}:${route.url}`)}`,
      limits: config.limits,
      ...(config.blockFor !== undefined && { blockFor: config.blockFor }),
      // skipOnError false still refuses in the core ('deny'); refuse() hands the error to Fastify.
      ...(hooks.skipOnError !== undefined && { onRedisError: hooks.skipOnError ? 'allow' : 'deny' }),
    });
    routeLimiters[`${methods} ${route.url}`] = limiter;
    const keyOf = config.key ?? ((request: FastifyRequest) => ipKey(request.ip));
    const cost = config.cost ?? 1;
    const lists = routeLists(config.allowList ?? allowList, config.denyList ?? denyList);
    const check = async (request: FastifyRequest, reply: FastifyReply) => {
      // A key generator may return a number (an account id): any key is a string to the limiter.
      const key = String(await keyOf(request));
      const list = lists.allow || lists.deny ? await listed(lists, request, key) : undefined;
      if (list === 'allow-list') return;
      if (list === 'deny-list') {
        return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: 'Access denied.' });
      }
      const units = typeof cost === 'function' ? await cost(request) : cost;
      const limits = config.limitsFor ? await config.limitsFor(request) : undefined;
      const result = await limiter.consume(key, { cost: units, ...(limits && { limits }) });
      if (headers) reply.headers(rateLimitHeaders(result, headers, { legacyReset: 'delta-seconds' }));
      if (!result.allowed) return refuse(request, reply, key, result, hooks);
      hooks.onExceeding?.(request, key);
    };
    const existing = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : [];
    route.onRequest = [check, ...existing] as RouteOptions['onRequest'];
  });

  if (healthRoutes) {
    const base = healthRoutes.prefix ?? '/health';
    app.get(`${base}/live`, async (_request, reply) => {
      const { statusCode, body } = health.liveness();
      return reply.code(statusCode).send(body);
    });
    app.get(`${base}/ready`, async (_request, reply) => {
      const { statusCode, body } = await health.readiness();
      return reply.code(statusCode).send(body);
    });
    // No I/O: the cache's hit rate, every breaker's state per Redis node, and every counter.
    app.get(`${base}/stats`, async (_request, reply) =>
      reply.code(200).send(
        primitivesReport({
          ...(cache && { caches: { cache } }),
          limiters: routeLimiters,
          locks: { lock: decoration.lock },
        }),
      ),
    );
  }

  app.addHook('onClose', async () => {
    await cache?.close();
    if (!options.redis) await closeClient(redis);
  });
}

/**
 * A route's hooks: its own where it sets them, else the plugin's. A route's `skipOnError` also
 * replaces the plugin's `onRedisError` (the route limiter is built with the mapped policy).
 */
function routeHooks(plugin: RateLimitHooks, route: RateLimitHooks): RateLimitHooks {
  return {
    errorResponseBuilder: route.errorResponseBuilder ?? plugin.errorResponseBuilder,
    onExceeding: route.onExceeding ?? plugin.onExceeding,
    onExceeded: route.onExceeded ?? plugin.onExceeded,
    skipOnError: route.skipOnError ?? plugin.skipOnError,
  };
}

/**
 * The redscale Fastify plugin: decorates the instance with `app.redscale` (`redis`, `cache`,
 * `lock`, `health`, `limiter()`), rate-limits routes that set `config.redscale`, optionally
 * serves `/health/live`, `/health/ready` and `/health/stats` (cache hit rate, breaker states,
 * counters), and on close quits a client it created (never yours).
 *
 * @example
 * ```ts
 * await app.register(redscale, { redis, health: { routes: { prefix: '/health' } } })
 * app.get('/search', { config: { redscale: { limits: slidingWindow({ limit: 10, window: '1s' }) } } }, handler)
 * ```
 */
export const redscale = fp(redscalePlugin, { fastify: '5.x', name: 'redscale' });
