import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CallHandler, type ExecutionContext, Inject, Injectable, type NestInterceptor } from '@nestjs/common';
import { NEVER, type Observable } from 'rxjs';
import { Cache } from '../../cache/cache.js';
import { InvalidOptionError } from '../../common/errors.js';
import { writeReply } from '../../http-cache/capture.js';
import { HttpCache, type Replay } from '../../http-cache/http-cache.js';
import { checkRouteOptions, type HttpCacheOptions } from '../../http-cache/options.js';
import { dispatchInternal, topLevelApp } from '../../http-cache/replay.js';

/** A route's HTTP cache options: the module's `Cache` is used unless `cache` is given. */
export type HttpCachedOptions = Omit<HttpCacheOptions<unknown>, 'cache'> & {
  /** The cache to store responses in, instead of the module's. */
  cache?: Cache;
};

const routes = new WeakMap<object, HttpCachedOptions>();

/**
 * Marks a route handler's responses as cacheable by {@link HttpCacheInterceptor} (which must be
 * bound to the controller or globally): `@HttpCached({ ttl: '30s', tags: () => ['products'] })`.
 * @throws InvalidOptionError when the class is defined, for an invalid option.
 */
export function HttpCached(options: HttpCachedOptions = {}): MethodDecorator {
  return (_target, name, descriptor) => {
    checkRouteOptions(options, `@HttpCached() on ${String(name)}`);
    if (typeof descriptor.value === 'function') routes.set(descriptor.value, options);
    return descriptor;
  };
}

interface PlatformRequest {
  method: string;
  url: string;
  originalUrl?: string;
  headers: IncomingMessage['headers'];
  ip?: string;
  socket?: { remoteAddress?: string };
  app?: unknown;
  server?: { inject(options: object): Promise<unknown> };
}

/**
 * Caches the responses of routes marked {@link HttpCached}, on Express and Fastify platforms:
 * status, headers and body are captured where Nest writes them (the Node response), so
 * `@HttpCode`, `@Header`, interceptors that shape the body and any serializer are part of what
 * is stored. A hit is written straight to the Node response and the handler never runs; the
 * observable returned for it never emits, so put interceptors that must see every response
 * (logging, timeouts) inside this one, or use the `X-Cache` header.
 *
 * @example
 * ```ts
 * @Controller('products')
 * @UseInterceptors(HttpCacheInterceptor)
 * class ProductsController {
 *   @Get() @HttpCached({ ttl: '30s', tags: () => ['products'] })
 *   list() { return this.products.all() }
 * }
 * ```
 */
@Injectable()
export class HttpCacheInterceptor implements NestInterceptor {
  readonly #cache: Cache | null;
  readonly #cores = new WeakMap<object, HttpCache<unknown>>();

  constructor(@Inject(Cache) cache: Cache | null) {
    this.#cache = cache;
  }

  /** Runs the route through the HTTP cache when it is marked {@link HttpCached}. */
  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const handler = context.getHandler();
    const core = this.#core(handler);
    if (!core) return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<PlatformRequest>();
    const platformRes = http.getResponse<ServerResponse | { raw: ServerResponse; hijack(): void }>();
    const res = 'raw' in platformRes ? platformRes.raw : platformRes;
    const url = req.originalUrl ?? req.url;
    const decision = await core.decide(req, { method: req.method, url, headers: req.headers }, res, replayOf(req, url));
    if (decision.kind !== 'hit') return next.handle();
    if ('hijack' in platformRes) platformRes.hijack();
    writeReply(res, decision.reply);
    return NEVER;
  }

  #core(handler: object): HttpCache<unknown> | undefined {
    const known = this.#cores.get(handler);
    if (known) return known;
    const options = routes.get(handler);
    if (!options) return undefined;
    const cache = options.cache ?? this.#cache;
    if (!cache) {
      throw new InvalidOptionError('cache', undefined, 'a Cache (RedscaleModule has `cache: false`)', '@HttpCached()');
    }
    const core = new HttpCache<unknown>({ ...options, cache }, '@HttpCached()');
    this.#cores.set(handler, core);
    return core;
  }
}

/** An internal copy of the request through the same app, for a background refresh. */
function replayOf(req: PlatformRequest, url: string): Replay | undefined {
  const remote = req.ip ?? req.socket?.remoteAddress;
  if (typeof req.app === 'function') {
    const listener = topLevelApp(req.app) as (req: IncomingMessage, res: ServerResponse) => void;
    return (headers) => dispatchInternal(listener, url, headers, remote);
  }
  const server = req.server;
  if (server && typeof server.inject === 'function') {
    return (headers) => {
      server.inject({ method: 'GET', url, headers, ...(remote && { remoteAddress: remote }) }).catch(() => {});
    };
  }
  return undefined;
}
