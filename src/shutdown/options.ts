import type { Server } from 'node:http';
import { z } from 'zod';
import { isRedisLike, type RedisLike } from '../client/types.js';
import type { Duration } from '../common/duration.js';
import { durationSchema } from '../common/options.js';

/** Something whose readiness turns to "not ready" when told: a `RedisHealth`, or your own. */
export interface Drainable {
  /** From now on, answer readiness probes with "not ready". */
  drain(): void;
}

/**
 * Something to close on shutdown: an object with `close()`, `stop()` or `release()` (a Cache, a
 * WriteBuffer or its consumer, a LockHandle, a RateLimiter with `close()`…), or a function (close
 * your database pool). Whatever it returns is awaited.
 */
export type Closable = { close(): unknown } | { stop(): unknown } | { release(): unknown } | (() => unknown);

/** Options for {@link gracefulShutdown}. Times run from the signal. */
export interface GracefulShutdownOptions {
  /**
   * The HTTP server(s) to drain: a `node:http` or `node:https` server (Express: what
   * `app.listen()` returns; Fastify: `app.server`; Nest: `app.getHttpServer()`). Install the
   * shutdown before it starts listening, so it sees every connection.
   */
  server?: Server | Server[];
  /** Readiness to turn to 503 at once: `RedisHealth` instances, or anything with `drain()`. */
  health?: Drainable | Drainable[];
  /**
   * How long to keep serving after readiness turned 503, before the listener closes: the time
   * the load balancer needs to notice (its probe interval × failure threshold). Default `'5s'`.
   */
  drainDelay?: Duration;
  /** How long requests in flight may take once the listener is closed; then they are cut. Default `'10s'`. */
  requestTimeout?: Duration;
  /** What to close after the requests, in this order (each may take up to `closeTimeout`). */
  close?: Closable[];
  /** How long one `close` entry may take before it counts as failed and the next one starts. Default `'5s'`. */
  closeTimeout?: Duration;
  /** Redis clients to QUIT last (with `closeClient`), once nothing needs them. */
  redis?: RedisLike | RedisLike[];
  /**
   * The hard deadline: at this point the process exits with code 1 whatever is still running.
   * Must leave room for `drainDelay` + `requestTimeout`. Default `'30s'`.
   */
  forceAfter?: Duration;
  /** Signals that start the shutdown; a second one exits at once with code 1. `[]` for none (call `shutdown()`). Default `['SIGTERM', 'SIGINT']`. */
  signals?: NodeJS.Signals[];
  /** Call `process.exit(code)` at the end. `false` leaves exiting to you (tests, embedding). Default `true`. */
  exit?: boolean;
  /** Receives one line per step (readiness flipped, listener closed, requests done or cut, …). */
  log?: (message: string) => void;
}

const isServer = (value: unknown): value is Server =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Server).close === 'function' &&
  typeof (value as Server).prependListener === 'function' &&
  typeof (value as Server).closeAllConnections === 'function';

const isDrainable = (value: unknown): value is Drainable =>
  typeof value === 'object' && value !== null && typeof (value as Drainable).drain === 'function';

const isClosable = (value: unknown): value is Closable => {
  if (typeof value === 'function') return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.close === 'function' ||
    typeof candidate.stop === 'function' ||
    typeof candidate.release === 'function'
  );
};

const oneOrMany = <T>(item: z.ZodType<T>) => z.union([item, z.array(item)]).transform((value) => [value].flat() as T[]);

export const shutdownSchema = z
  .strictObject({
    server: oneOrMany(
      z.custom<Server>(isServer, { message: 'a node:http server (what app.listen() returns)' }),
    ).default([]),
    health: oneOrMany(
      z.custom<Drainable>(isDrainable, { message: 'a RedisHealth, or an object with drain()' }),
    ).default([]),
    drainDelay: durationSchema({ allowZero: true }).default(5_000),
    requestTimeout: durationSchema({ allowZero: true }).default(10_000),
    close: z
      .array(z.custom<Closable>(isClosable, { message: 'an object with close(), stop() or release(), or a function' }))
      .default([]),
    closeTimeout: durationSchema().default(5_000),
    redis: oneOrMany(z.custom<RedisLike>(isRedisLike, { message: 'an ioredis Redis or Cluster instance' })).default([]),
    forceAfter: durationSchema().default(30_000),
    signals: z
      .array(z.string().regex(/^SIG[A-Z0-9]+$/, { message: 'a signal name like SIGTERM' }))
      .default(['SIGTERM', 'SIGINT']),
    exit: z.boolean().default(true),
    log: z
      .custom<(message: string) => void>((value) => typeof value === 'function', { message: 'a function' })
      .optional(),
  })
  .refine((options) => options.forceAfter > options.drainDelay + options.requestTimeout, {
    message: 'a hard deadline later than drainDelay + requestTimeout',
    path: ['forceAfter'],
  });

export type ResolvedShutdownOptions = z.output<typeof shutdownSchema>;
