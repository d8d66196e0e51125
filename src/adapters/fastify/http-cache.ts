import type { FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions } from 'fastify';
import type { Cache } from '../../cache/cache.js';
import { InvalidOptionError } from '../../common/errors.js';
import { HttpCache } from '../../http-cache/http-cache.js';
import type { HttpCacheOptions } from '../../http-cache/options.js';

/**
 * Route-level response caching: `app.get('/x', { config: { httpCache: { ttl: '30s' } } }, handler)`.
 * The plugin's cache (`app.redscale.cache`) is used unless `cache` is given.
 */
export type RouteHttpCache = Omit<HttpCacheOptions<FastifyRequest>, 'cache'> & {
  /** The cache to store responses in, instead of the plugin's `app.redscale.cache`. */
  cache?: Cache;
};

/**
 * The onRequest hook that caches a route's responses: a hit is sent through `reply` (so the
 * app's onSend/onResponse hooks see it); on a miss the handler runs and its response is stored.
 */
export function httpCacheHook(
  given: RouteHttpCache,
  defaultCache: Cache | undefined,
  route: string,
): onRequestHookHandler {
  const cache = given.cache ?? defaultCache;
  if (!cache) {
    throw new InvalidOptionError(
      'config.httpCache.cache',
      undefined,
      'a Cache (the plugin was registered with `cache: false`)',
      `route ${route}`,
    );
  }
  const core = new HttpCache<FastifyRequest>({ ...given, cache }, `config.httpCache of route ${route}`);
  return async function redscaleHttpCache(request: FastifyRequest, reply: FastifyReply) {
    const info = { method: request.method, url: request.url, headers: request.headers };
    const decision = await core.decide(request, info, reply.raw, (headers) => {
      request.server.inject({ method: 'GET', url: request.url, headers, remoteAddress: request.ip }).catch(() => {});
    });
    if (decision.kind !== 'hit') return;
    const { status, headers, body } = decision.reply;
    return reply.code(status).headers(headers).send(body);
  };
}

/** Adds the hook to a route that sets `config.httpCache`, after its other onRequest hooks (rate limits first). */
export function addHttpCache(route: RouteOptions, cache: Cache | undefined): void {
  const given = (route.config as { httpCache?: RouteHttpCache } | undefined)?.httpCache;
  if (given === undefined) return;
  const methods = Array.isArray(route.method) ? route.method.join(',') : route.method;
  if (given === null || typeof given !== 'object') {
    throw new InvalidOptionError(
      'config.httpCache',
      given,
      'an object of HTTP cache options',
      `route ${methods} ${route.url}`,
    );
  }
  const hook = httpCacheHook(given, cache, `${methods} ${route.url}`);
  const existing = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : [];
  route.onRequest = [...existing, hook] as RouteOptions['onRequest'];
}
