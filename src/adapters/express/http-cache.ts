import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { writeReply } from '../../http-cache/capture.js';
import { HttpCache } from '../../http-cache/http-cache.js';
import type { HttpCacheOptions } from '../../http-cache/options.js';
import { dispatchInternal, topLevelApp } from '../../http-cache/replay.js';

/**
 * Express middleware that caches a route's responses in a redscale `Cache` (see
 * {@link HttpCacheOptions}): whatever the handler sends (JSON, HTML, a buffer, a piped stream)
 * is stored with its status and headers; concurrent cold requests across instances run the
 * handler once; `If-None-Match` gets a 304; `X-Cache` says HIT, MISS or STALE. `next()` is called
 * at most once, and a Redis failure just runs the handler.
 *
 * @example
 * ```ts
 * app.get('/products', httpCache({ cache, ttl: '30s', tags: () => ['products'] }), listProducts)
 * ```
 */
export function httpCache(options: HttpCacheOptions<Request>): RequestHandler & { httpCache: HttpCache<Request> } {
  const core = new HttpCache<Request>(options, 'httpCache()');
  const middleware = async function redscaleHttpCache(req: Request, res: Response, next: NextFunction) {
    const decision = await core.decide(
      req,
      { method: req.method, url: req.originalUrl, headers: req.headers },
      res,
      (headers) =>
        dispatchInternal(
          topLevelApp(req.app) as (req: IncomingMessage, res: ServerResponse) => void,
          req.originalUrl,
          headers,
          req.socket?.remoteAddress,
        ),
    );
    if (decision.kind === 'hit') writeReply(res, decision.reply);
    else next();
  };
  return Object.assign(middleware, { httpCache: core });
}
