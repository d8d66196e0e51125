import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RateLimitResult } from '../../ratelimit/result.js';

/** What {@link RateLimitHooks.errorResponseBuilder} is told about a refused request. */
export interface RefusalContext {
  /** The status the reply gets unless the builder's body carries its own `statusCode`: 429, or 503 when Redis failed. */
  statusCode: number;
  /** The limited identity (the route's `key`, default the client IP). */
  key: string;
  /** The deciding limit's limit (@fastify/rate-limit's `max`). */
  max: number;
  /** Milliseconds until a retry can succeed (@fastify/rate-limit's `ttl`). */
  ttl: number;
  /** The same in words, as @fastify/rate-limit's `after`: `'3 seconds'`, `'1 minute'`. */
  after: string;
  /** The limiter's whole answer. */
  result: RateLimitResult;
}

/**
 * @fastify/rate-limit's hooks, for routes limited by the redscale plugin: set them in the
 * plugin's `rateLimit` options, or per route in `config.redscale` (a route's own win).
 */
export interface RateLimitHooks {
  /**
   * Builds the body of a refusal (429, or 503 when Redis failed under `onRedisError: 'deny'`).
   * A body with a numeric `statusCode` from 400 to 599 sets the status, as with
   * @fastify/rate-limit. Default: `{ statusCode, error, message, retryAfter }`.
   */
  errorResponseBuilder?: (request: FastifyRequest, context: RefusalContext) => unknown;
  /** Called for every request the limit admits, with its key (before the handler runs). */
  onExceeding?: (request: FastifyRequest, key: string) => void;
  /** Called for every request refused because a limit or a block refused it (not when Redis failed). */
  onExceeded?: (request: FastifyRequest, key: string) => void;
  /**
   * @fastify/rate-limit's `skipOnError`, mapped onto `onRedisError`: `true` lets requests through
   * while Redis fails (`onRedisError: 'allow'`); `false` hands the Redis error to Fastify's error
   * handler (`setErrorHandler`) with `statusCode` 503, instead of replying itself. Give this or
   * `onRedisError`, not both. Default: unset (`onRedisError` decides).
   */
  skipOnError?: boolean;
}

/** A refusal handed to Fastify's error handler under `skipOnError: false`. */
export type RateLimitRedisError = Error & {
  /** 503: the limit could not be checked; Fastify's error handler decides what the client sees. */
  statusCode: number;
};

/**
 * Answers a refused request: runs `onExceeded`, then replies with the builder's body (or the
 * default one), or, under `skipOnError: false`, throws the Redis error for Fastify to handle.
 */
export function refuse(
  request: FastifyRequest,
  reply: FastifyReply,
  key: string,
  result: RateLimitResult,
  hooks: RateLimitHooks,
): FastifyReply {
  const redisFailed = result.reason === 'redis-error';
  if (redisFailed && hooks.skipOnError === false && result.error) {
    throw Object.assign(result.error, { statusCode: 503 }) as RateLimitRedisError;
  }
  if (!redisFailed) hooks.onExceeded?.(request, key);
  const retryAfter = Math.max(1, Math.ceil(result.retryAfter / 1_000));
  const statusCode = redisFailed ? 503 : 429;
  reply.header('retry-after', String(retryAfter));
  if (hooks.errorResponseBuilder) {
    const context: RefusalContext = {
      statusCode,
      key,
      max: result.limit,
      ttl: result.retryAfter,
      after: inWords(retryAfter),
      result,
    };
    const body = hooks.errorResponseBuilder(request, context);
    const own = (body as { statusCode?: unknown } | null)?.statusCode;
    const status = typeof own === 'number' && Number.isInteger(own) && own >= 400 && own <= 599 ? own : statusCode;
    return reply.code(status).send(body);
  }
  return reply.code(statusCode).send({
    statusCode,
    error: redisFailed ? 'Service Unavailable' : 'Too Many Requests',
    message: redisFailed ? 'Rate limiting is unavailable.' : `Rate limit exceeded, retry in ${retryAfter} s.`,
    retryAfter,
  });
}

const UNITS: Array<[number, string]> = [
  [31_557_600, 'year'],
  [86_400, 'day'],
  [3_600, 'hour'],
  [60, 'minute'],
  [1, 'second'],
];

/** Seconds in the largest unit they reach, rounded, as @fastify/rate-limit's `after` (90 → `'2 minutes'`). */
export function inWords(seconds: number): string {
  const [size, unit] = UNITS.find(([size]) => seconds >= size || size === 1) as [number, string];
  const count = Math.round(seconds / size);
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}
