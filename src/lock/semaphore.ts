import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import type { Duration } from '../common/duration.js';
import {
  AbortedError,
  InvalidOptionError,
  RedisCommandError,
  type RedscaleError,
  toRedisError,
} from '../common/errors.js';
import { parseCallOptions, parseOptions, positiveInt } from '../common/options.js';
import { ServerClocks } from '../common/server-clock.js';
import { type Logger, logError } from '../observability/logger.js';
import { coalescedEval } from '../scripts/coalesce.js';
import { LockNotReplicatedError, LockTimeoutError } from './errors.js';
import { SemaphoreHandle } from './handle.js';
import { semaphoreKeyOf } from './keys.js';
import type { AcquireOptions } from './options.js';
import { acquireOptionsShape, checkFunction, checkResource, leaseOptionsShape } from './options.js';
import { acknowledgedReplicas } from './replication.js';
import { runWhileHeld } from './run-held.js';
import { GRANTED, runBeforeDeadline } from './timed-script.js';
import { acquireWithin } from './waiting.js';

/** The most permits a semaphore can have: each held permit is one member of a sorted set. */
export const MAX_SEMAPHORE_LIMIT = 10_000;

/** Options for {@link Semaphore}. Per-call options override `ttl`, `wait` and `autoExtend`. */
export interface SemaphoreOptions {
  /** The Redis (standalone or Cluster) the semaphores live in. Their keys must not be evictable. */
  redis: RedisLike;
  /**
   * How many permits each resource has: how many holders at once (1 to 10,000). Every instance
   * using a resource must give it the same limit.
   */
  limit: number;
  /**
   * First come, first served: a waiter gets its permits only once the waiters that asked before it
   * have theirs, so many small requests cannot starve a big one. Waiters poll, so a freed permit
   * may stay unused up to `retryDelay.max` while the first waiter sleeps. Every instance using a
   * resource must agree. Default `false`.
   */
  fair?: boolean;
  /** Namespace of the keys (`<prefix>:sem:{<resource>}`). Default `'redscale'`. */
  prefix?: string;
  /** How long permits are held unless extended: 10 ms to 2^31−1 ms. Default `'10s'`. */
  ttl?: Duration;
  /** How long `acquire` keeps trying while no permit is free. Default `'5s'`. */
  wait?: Duration;
  /** Backoff between tries: exponential from `min` to `max`, with full jitter. Default `{ min: '10ms', max: '500ms' }`. */
  retryDelay?: { min?: Duration; max?: Duration };
  /** Longest one Redis call may take (each acquire attempt, extension and release). Default `'1s'`. */
  timeout?: Duration;
  /**
   * Replicas that must acknowledge a grant (Redis `WAIT`) before `acquire` resolves; when fewer
   * do within `replicationTimeout`, the permits are given back and `acquire` rejects with a
   * {@link LockNotReplicatedError}. See `LockOptions.replicas`. Default `0` (do not wait).
   */
  replicas?: number;
  /** How long Redis waits for `replicas` to acknowledge a grant (1 ms or more). Default `'500ms'`. */
  replicationTimeout?: Duration;
  /** Called with Redis failures the semaphore absorbed (a failed auto-extension it will retry). */
  onError?: (error: RedscaleError) => void;
  /** A pino/console-like logger: absorbed Redis failures go to `warn`. Default: none. */
  logger?: Logger;
}

/** Options of one semaphore acquisition. */
export interface SemaphoreAcquireOptions extends AcquireOptions {
  /** How many permits to take at once (1 to `limit`). Default `1`. */
  permits?: number;
}

/** What `withPermit` gives the function it runs. */
export interface SemaphoreContext {
  /** Aborts with a LockLostError when the permits are lost. */
  readonly signal: AbortSignal;
  /** This holder's fencing token. */
  readonly fence: number;
  /** The handle itself. */
  readonly handle: SemaphoreHandle;
}

const optionsSchema = z.strictObject({
  ...leaseOptionsShape,
  limit: positiveInt(`an integer from 1 to ${MAX_SEMAPHORE_LIMIT}`).refine((n) => n <= MAX_SEMAPHORE_LIMIT, {
    message: `an integer from 1 to ${MAX_SEMAPHORE_LIMIT}`,
  }),
  fair: z.boolean().default(false),
});
const acquireSchema = z.strictObject({
  ...acquireOptionsShape,
  permits: positiveInt().optional(),
});

type Resolved = z.output<typeof optionsSchema>;
type Call = z.output<typeof acquireSchema>;

/** Modes of the acquire script. */
const NOT_FAIR = 0;
const FAIR_QUEUE = 1;
const FAIR_NO_QUEUE = 2;

/**
 * A distributed counting semaphore: at most `limit` permits of a resource are held at once, across
 * every process. Acquiring is one round trip; holders are leases like locks — token-checked
 * `release` and `extend`, automatic extension, a `signal` that aborts when the permits are lost
 * (checked on read), a fencing token, `await using` — and a holder that dies frees its permits
 * when its ttl runs out. Optionally fair (first come, first served). Times are the server's, so
 * instances with skewed clocks agree.
 *
 * @example
 * ```ts
 * const partnerApi = new Semaphore({ redis, limit: 5 })
 * await partnerApi.withPermit('partner-api', async ({ signal }) => callPartner({ signal }))
 * ```
 */
export class Semaphore {
  readonly #options: Resolved;
  readonly #clocks: ServerClocks;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: SemaphoreOptions) {
    const parsed = parseOptions(optionsSchema, options, 'Semaphore');
    const { logger, onError, prefix } = parsed;
    // Absorbed failures reach the logger through the same path as `onError`.
    this.#options = logger
      ? {
          ...parsed,
          onError: (error: RedscaleError) => {
            onError?.(error);
            logError(logger, 'warn', error, { prefix });
          },
        }
      : parsed;
    this.#clocks = new ServerClocks(this.#options.redis);
  }

  /** How many permits each resource has. */
  get limit(): number {
    return this.#options.limit;
  }

  /**
   * Takes `permits` (default 1) of `resource`, waiting up to `wait` until they are free.
   * @throws LockTimeoutError when they stayed taken for all of `wait`; a RedscaleError with code
   * ERR_TIMEOUT or ERR_REDIS when Redis fails (never reported as "busy"); AbortedError on abort;
   * LockNotReplicatedError (with `replicas`) when too few replicas acknowledged the grant.
   */
  async acquire(resource: string, options: SemaphoreAcquireOptions = {}): Promise<SemaphoreHandle> {
    const where = 'Semaphore.acquire()';
    checkResource(resource, where);
    return this.#acquire(resource, this.#parseCall(options, where));
  }

  /** Takes `permits` of `resource` if they are free right now; resolves `null` if not. */
  async tryAcquire(
    resource: string,
    options: Omit<SemaphoreAcquireOptions, 'wait'> = {},
  ): Promise<SemaphoreHandle | null> {
    const where = 'Semaphore.tryAcquire()';
    checkResource(resource, where);
    try {
      return await this.#acquire(resource, { ...this.#parseCall(options, where), wait: 0 });
    } catch (error) {
      if (error instanceof LockTimeoutError) return null;
      throw error;
    }
  }

  /**
   * Runs `fn` while holding `permits` of `resource`: acquires, extends automatically while `fn`
   * runs, and gives the permits back when it settles; rejects with a LockLostError if they were
   * lost meanwhile, as `Lock.withLock` does.
   */
  async withPermit<T>(
    resource: string,
    fn: (context: SemaphoreContext) => Promise<T> | T,
    options: SemaphoreAcquireOptions = {},
  ): Promise<T> {
    checkFunction(fn, 'Semaphore.withPermit()');
    const handle = await this.acquire(resource, { ...options, autoExtend: options.autoExtend ?? true });
    const context: SemaphoreContext = {
      get signal() {
        return handle.signal;
      },
      get fence() {
        return handle.fence;
      },
      handle,
    };
    return runWhileHeld(handle, resource, context, fn, this.#options.onError);
  }

  #parseCall(options: SemaphoreAcquireOptions, where: string): Call {
    const call = parseCallOptions(acquireSchema, options, where);
    if (call.permits !== undefined && call.permits > this.#options.limit) {
      throw new InvalidOptionError(
        'permits',
        call.permits,
        `an integer from 1 to the limit, ${this.#options.limit}`,
        where,
      );
    }
    return call;
  }

  async #acquire(resource: string, call: Call): Promise<SemaphoreHandle> {
    const { redis, prefix, timeout, retryDelay, limit, fair, onError, replicas, replicationTimeout } = this.#options;
    const ttl = call.ttl ?? this.#options.ttl;
    const wait = call.wait ?? this.#options.wait;
    const permits = call.permits ?? 1;
    const base = semaphoreKeyOf(prefix, resource);
    const holders = base;
    const queue = `${base}:queue`;
    const places = `${base}:places`;
    // Only a fair semaphore has a queue to leave: the others' releases touch the holders alone.
    const releaseKeys = fair ? [holders, queue, places] : [holders];
    // One token for the whole call: a fair waiter's place in the queue is tied to it. Reusing it
    // is safe because a new attempt is only sent after the previous one was answered.
    const token = randomUUID();
    const mode = fair ? (wait > 0 ? FAIR_QUEUE : FAIR_NO_QUEUE) : NOT_FAIR;
    // A live waiter renews its place at least every retryDelay.max + timeout.
    const queueTtl = 3 * (retryDelay.max + timeout);
    const undo = () => {
      coalescedEval(redis, 'lockSemaphoreRelease', releaseKeys, [token, permits]).catch((error: unknown) => {
        onError?.(toRedisError('semaphore release after a failed acquire', error, { resource }));
      });
    };
    const callDeadline = performance.now() + wait + timeout;
    let acquired: { sentAt: number; fence: number };
    try {
      acquired = await acquireWithin<{ sentAt: number; fence: number }>(
        { name: resource, operation: 'semaphore acquire', waitMs: wait, retryDelay, signal: call.signal },
        async () => {
          const sentAt = performance.now();
          let reply: Awaited<ReturnType<typeof runBeforeDeadline>>;
          try {
            reply = await runBeforeDeadline(
              redis,
              this.#clocks,
              'lockSemaphoreAcquire',
              [holders, `${base}:fence`, queue, places],
              [token, permits, limit, ttl, mode, queueTtl],
              Math.min(sentAt + timeout, callDeadline),
              timeout,
              'semaphore acquire',
              { resource },
            );
          } catch (error) {
            undo();
            throw toRedisError('semaphore acquire', error, { resource });
          }
          const value = reply.values[0];
          if (reply.status !== GRANTED) return { busyForMs: value };
          if (value === undefined) {
            undo();
            throw new RedisCommandError('semaphore acquire', new Error('the reply carries no fencing token'), {
              resource,
            });
          }
          return { acquired: { sentAt, fence: value } };
        },
      );
    } catch (error) {
      // A fair waiter that gives up leaves the queue instead of holding up the others until its place expires.
      if (mode === FAIR_QUEUE && (error instanceof LockTimeoutError || error instanceof AbortedError)) undo();
      throw error;
    }
    if (replicas > 0) {
      // Trust the permits only once enough replicas have them (a failover could lose them otherwise).
      let acknowledged: number;
      try {
        acknowledged = await acknowledgedReplicas(
          redis,
          [holders],
          { replicas, timeoutMs: replicationTimeout },
          performance.now() + replicationTimeout + timeout,
          { resource },
        );
      } catch (error) {
        undo();
        throw error;
      }
      if (acknowledged < replicas) {
        undo();
        throw new LockNotReplicatedError(resource, replicas, acknowledged, replicationTimeout);
      }
    }
    return new SemaphoreHandle({
      name: resource,
      resource,
      token,
      permits,
      fence: acquired.fence,
      ttlMs: ttl,
      timeoutMs: timeout,
      autoExtend: call.autoExtend ?? false,
      sentAt: acquired.sentAt,
      onError,
      operations: {
        extend: async (ttlMs, deadline) =>
          (
            await runBeforeDeadline(
              redis,
              this.#clocks,
              'lockSemaphoreExtend',
              [holders],
              [token, permits, ttlMs],
              deadline,
              timeout,
              'semaphore extend',
              { resource },
            )
          ).status === GRANTED,
        release: async (deadline) =>
          (await untilDeadline(
            coalescedEval(redis, 'lockSemaphoreRelease', releaseKeys, [token, permits]),
            deadline,
            timeout,
            'semaphore release',
            { resource },
          )) === permits,
      },
    });
  }
}
