import { z } from 'zod';
import { Cache } from '../cache/cache.js';
import type { Duration } from '../common/duration.js';
import { durationSchema, parseOptions, positiveInt } from '../common/options.js';
import { STORABLE_STATUSES } from './policy.js';

/** Options of HTTP response caching for a route (or a group of routes); `Req` is the framework's request. */
export interface HttpCacheOptions<Req = unknown> {
  /** The cache responses are stored in (its prefix, timeout, lock and bus apply). */
  cache: Cache;
  /** How long a stored response is fresh (`X-Cache: HIT`). Default `'1m'`. */
  ttl?: Duration;
  /**
   * How long after `ttl` a response is still served (`X-Cache: STALE`) while one request
   * refreshes it in the background, across instances. Default `0`.
   */
  staleFor?: Duration;
  /** Tags of the stored response, so a write route can `cache.invalidateTags(...)` what it changed. */
  tags?: string[] | ((req: Req) => string[]);
  /**
   * The key of a request, replacing the default: method + normalized path + sorted query + the
   * `vary` headers. Include the user when the response differs per user.
   */
  key?: (req: Req) => string;
  /**
   * Request headers the response varies on (`accept-language`): their values are part of the
   * key. A response whose `Vary` names a header not listed here is not stored. Default `[]`.
   */
  vary?: string[];
  /** Statuses that may be stored (among 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501). Default `[200, 203, 204, 301]`. */
  statuses?: number[];
  /** Bodies larger than this (bytes) are sent as they stream and never stored. Default 1 MiB. */
  maxBodySize?: number;
  /** `Cache-Control` sent with every response this route serves from or into the cache (`'public, max-age=60'`). Default: the handler's. */
  cacheControl?: string;
  /**
   * Store responses marked `Cache-Control: private`, `no-store` or `no-cache` (only with a `key`
   * that separates users). Default `false`: such responses are never stored.
   */
  storePrivate?: boolean;
  /** Called with every failure absorbed (a `key` or `tags` function that threw, a refresh that failed). */
  onError?: (error: unknown) => void;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: 'an HTTP header name' })
  .transform((name) => name.toLowerCase());

const optionsSchema = z.strictObject({
  cache: z.custom<Cache>((value) => value instanceof Cache, { message: 'a redscale Cache' }),
  ttl: durationSchema().default(60_000),
  staleFor: durationSchema({ allowZero: true }).default(0),
  tags: z.union([z.array(z.string().min(1)), fn<(req: unknown) => string[]>()]).optional(),
  key: fn<(req: unknown) => string>().optional(),
  vary: z.array(headerName).default([]),
  statuses: z
    .array(
      z.number().refine((status) => (STORABLE_STATUSES as readonly number[]).includes(status), {
        message: `one of ${STORABLE_STATUSES.join(', ')}`,
      }),
    )
    .min(1)
    .default([200, 203, 204, 301]),
  maxBodySize: positiveInt().default(1024 * 1024),
  cacheControl: z
    .string()
    .regex(/^[\t\x20-\x7e]+$/, { message: 'a Cache-Control header value' })
    .optional(),
  storePrivate: z.boolean().default(false),
  onError: fn<(error: unknown) => void>().optional(),
});

/** {@link HttpCacheOptions} after validation: durations in ms, header names lowercased. */
export type ResolvedHttpCacheOptions = z.output<typeof optionsSchema>;

/** Validates {@link HttpCacheOptions}; `where` names the route or adapter in error messages. */
export function parseHttpCacheOptions(options: unknown, where: string): ResolvedHttpCacheOptions {
  return parseOptions(optionsSchema, options, where);
}

const routeSchema = optionsSchema.extend({ cache: optionsSchema.shape.cache.optional() });

/**
 * Validates a route's options before its cache is known (a Nest decorator runs when the class is
 * defined): a bad option fails at startup, not at the first request.
 */
export function checkRouteOptions(options: unknown, where: string): void {
  parseOptions(routeSchema, options, where);
}
