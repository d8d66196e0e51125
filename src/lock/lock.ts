import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import type { Duration } from '../common/duration.js';
import { AbortedError, InvalidOptionError, type RedscaleError, toRedisError } from '../common/errors.js';
import { hashTag } from '../common/keys.js';
import { durationSchema, MAX_TIMER_MS, parseOptions, prefixSchema, redisClientSchema } from '../common/options.js';
import { runScript } from '../scripts/registry.js';
import { ServerClocks } from './clocks.js';
import { LockLostError, LockTimeoutError } from './errors.js';
import { LockHandle } from './handle.js';
import { checkResource, ttlSchema } from './lease.js';
import { GRANTED, runBeforeDeadline } from './timed-script.js';

/** Options for {@link Lock}. Per-call options override `ttl`, `wait` and `autoExtend`. */
export interface LockOptions {
  /** The Redis (standalone or Cluster) the locks live in. Lock keys must not be evictable. */
  redis: RedisLike;
  /** Namespace of the lock keys (`<prefix>:lock:{<resource>}`). Default `'redscale'`. */
  prefix?: string;
  /** How long a lock lives unless extended: 10 ms to 2^31−1 ms (~24.8 days, what a timer can wait). Default `'10s'`. */
  ttl?: Duration;
  /** How long `acquire` keeps trying while someone else holds the lock. Default `'5s'`. */
  wait?: Duration;
  /** Backoff between tries: exponential from `min` to `max`, with full jitter. Default `{ min: '10ms', max: '500ms' }`. */
  retryDelay?: { min?: Duration; max?: Duration };
  /** Longest one Redis call may take (each acquire attempt, extension and release). Default `'1s'`. */
  timeout?: Duration;
  /** Called with Redis failures the lock absorbed (a failed auto-extension it will retry). */
  onError?: (error: RedscaleError) => void;
}

/** Options of one acquisition. */
export interface AcquireOptions {
  /** How long the lock lives unless extended (10 ms to 2^31−1 ms). Default: the Lock's `ttl`. */
  ttl?: Duration;
  /** How long to keep trying while the lock is held. Default: the Lock's `wait`. */
  wait?: Duration;
  /** Extend the lock automatically (every third of its ttl) until it is released. Default `false` (`withLock`: `true`). */
  autoExtend?: boolean;
  /** Stops waiting (rejects with `ERR_ABORTED`). */
  signal?: AbortSignal;
}

/** What `withLock` gives the function it runs. */
export interface LockContext {
  /** Aborts with a LockLostError when the lock is lost: stop work that needs exclusivity. */
  readonly signal: AbortSignal;
  /** The fencing token to send with writes to the protected resource. */
  readonly fence: number;
  /** The handle itself (extend by hand, check `remainingMs`). */
  readonly handle: LockHandle;
}

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

const optionsSchema = z.strictObject({
  redis: redisClientSchema,
  prefix: prefixSchema.default('redscale'),
  ttl: ttlSchema.default(10_000),
  wait: durationSchema({ allowZero: true }).default(5_000),
  retryDelay: z
    .strictObject({
      min: durationSchema({ max: MAX_TIMER_MS }).default(10),
      max: durationSchema({ max: MAX_TIMER_MS }).default(500),
    })
    .refine((delay) => delay.min <= delay.max, { message: 'min not greater than max' })
    .prefault({}),
  timeout: durationSchema().default(1_000),
  onError: fn<(error: RedscaleError) => void>().optional(),
});

const acquireSchema = z.strictObject({
  ttl: ttlSchema.optional(),
  wait: durationSchema({ allowZero: true }).optional(),
  autoExtend: z.boolean().optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
});

type Resolved = z.output<typeof optionsSchema>;

/**
 * A distributed mutex on Redis with fencing tokens. Acquiring is one round trip (`SET NX PX`
 * and the fencing token in one script); releasing and extending are one each and only act while
 * this holder's token is still the lock's. Waiting retries with jittered exponential backoff, never
 * longer than the current holder's remaining ttl.
 *
 * Every call runs under one deadline. An acquire carries it to Redis in the server's time and is
 * refused there if it runs later (a replayed or stalled command), and after any failed attempt
 * the lock sends a token-checked release, so an acquire the caller gave up on never leaves the
 * resource locked: retrying at once succeeds.
 *
 * A Redis lock is a lease, not a guarantee: a long GC pause, a stalled process or a failover
 * that loses the key (Redis replicates asynchronously) can let two holders overlap. Stop when
 * `signal` aborts, and make the protected resource check the fencing token.
 *
 * @example
 * ```ts
 * const lock = new Lock({ redis })
 * await lock.withLock('invoice:7', async ({ signal, fence }) => {
 *   await chargeInvoice(7, { fence, signal })
 * }, { ttl: '10s' })
 * ```
 */
export class Lock {
  readonly #options: Resolved;
  readonly #clocks: ServerClocks;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: LockOptions) {
    this.#options = parseOptions(optionsSchema, options, 'Lock');
    this.#clocks = new ServerClocks(this.#options.redis);
  }

  /**
   * Acquires `resource`, waiting up to `wait` while someone else holds it.
   * @throws LockTimeoutError when it stayed held for all of `wait`; a RedscaleError with code
   * ERR_TIMEOUT or ERR_REDIS when Redis fails (never reported as "busy"); AbortedError on abort.
   */
  acquire(resource: string, options: AcquireOptions = {}): Promise<LockHandle> {
    return this.#acquire(resource, options, 'Lock.acquire()');
  }

  /** Acquires `resource` if it is free right now; resolves `null` if someone holds it. */
  async tryAcquire(resource: string, options: Omit<AcquireOptions, 'wait'> = {}): Promise<LockHandle | null> {
    try {
      return await this.#acquire(resource, { ...options, wait: 0 }, 'Lock.tryAcquire()');
    } catch (error) {
      if (error instanceof LockTimeoutError) return null;
      throw error;
    }
  }

  /**
   * Runs `fn` while holding `resource`: acquires (waiting up to `wait`), extends automatically
   * while `fn` runs, and releases when it settles. If the lock is lost meanwhile, `signal`
   * aborts, and `withLock` rejects with a LockLostError once `fn` settles — even if `fn`
   * succeeded, since its work may have overlapped with another holder's.
   */
  async withLock<T>(
    resource: string,
    fn: (context: LockContext) => Promise<T> | T,
    options: AcquireOptions = {},
  ): Promise<T> {
    if (typeof fn !== 'function')
      throw new InvalidOptionError('fn', fn, 'a function to run under the lock', 'Lock.withLock()');
    const handle = await this.acquire(resource, { ...options, autoExtend: options.autoExtend ?? true });
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await fn(contextOf(handle)) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const lost = handle.lostError;
    let released = false;
    try {
      released = await handle.release();
    } catch (error) {
      // Redis is unreachable: the lock will expire by its ttl. Only an error if it was lost.
      this.#options.onError?.(toRedisError('lock release', error, { resource }));
      released = !lost;
    }
    if (lost) {
      if (!outcome.ok && outcome.error !== lost) throw new LockLostError(resource, lost.reason, outcome.error);
      throw lost;
    }
    if (!released) throw new LockLostError(resource, 'not-held', outcome.ok ? undefined : outcome.error);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  async #acquire(resource: string, options: AcquireOptions, where: string): Promise<LockHandle> {
    checkResource(resource, where);
    const call = parseOptions(acquireSchema, options, where);
    const { redis, prefix, timeout, retryDelay } = this.#options;
    const ttl = call.ttl ?? this.#options.ttl;
    const wait = call.wait ?? this.#options.wait;
    const key = `${prefix}:lock:${hashTag(resource)}`;
    const fenceKey = `${key}:fence`;
    const started = performance.now();
    // One deadline for the whole call: every attempt starts within `wait` and gets `timeout`.
    const callDeadline = started + wait + timeout;
    for (let attempt = 1; ; attempt++) {
      if (call.signal?.aborted) throw new AbortedError('lock acquire', call.signal.reason, { resource });
      // A fresh token per attempt: a late grant of an earlier one is released by its own token.
      const token = randomUUID();
      const sentAt = performance.now();
      let reply: Awaited<ReturnType<typeof runBeforeDeadline>>;
      try {
        reply = await runBeforeDeadline(
          redis,
          this.#clocks,
          'lockAcquire',
          [key, fenceKey],
          [token, ttl],
          Math.min(sentAt + timeout, callDeadline),
          timeout,
          'lock acquire',
          { resource },
        );
      } catch (error) {
        this.#undo(key, token, resource);
        throw toRedisError('lock acquire', error, { resource });
      }
      if (reply.status === GRANTED) {
        const fence = reply.values[0];
        if (fence === undefined) {
          this.#undo(key, token, resource);
          throw toRedisError('lock acquire', new Error('the acquire reply carries no fencing token'), { resource });
        }
        return new LockHandle({
          name: resource,
          resource,
          token,
          fence,
          ttlMs: ttl,
          timeoutMs: timeout,
          autoExtend: call.autoExtend ?? false,
          sentAt,
          onError: this.#options.onError,
          operations: {
            extend: async (ttlMs, deadline) =>
              (
                await runBeforeDeadline(
                  redis,
                  this.#clocks,
                  'lockExtend',
                  [key],
                  [token, ttlMs],
                  deadline,
                  timeout,
                  'lock extend',
                  { resource },
                )
              ).status === GRANTED,
            release: async (deadline) =>
              (await untilDeadline(runScript(redis, 'lockRelease', [key], [token]), deadline, timeout, 'lock release', {
                resource,
              })) === 1,
          },
        });
      }
      const waited = performance.now() - started;
      const left = wait - waited;
      if (left <= 0) throw new LockTimeoutError(resource, waited, attempt);
      // Full jitter over an exponential ceiling, and never past the holder's remaining ttl.
      const ceiling = Math.min(retryDelay.max, retryDelay.min * 2 ** Math.min(attempt - 1, 20));
      const holderTtl = reply.values[0] ?? -1;
      const holderLeft = holderTtl > 0 ? holderTtl : Number.POSITIVE_INFINITY;
      const delay = Math.max(1, Math.min(left, holderLeft, Math.round(Math.random() * ceiling) + 1));
      try {
        await sleep(delay, undefined, call.signal ? { signal: call.signal } : undefined);
      } catch {
        throw new AbortedError('lock acquire', call.signal?.reason, { resource });
      }
    }
  }

  /**
   * After an attempt whose outcome is unknown (timed out, connection lost), releases whatever it
   * may still grant: the release is queued behind the acquire on the same connection, so a grant
   * that lands late is undone at once instead of keeping the resource locked for a whole ttl.
   */
  #undo(key: string, token: string, resource: string): void {
    runScript(this.#options.redis, 'lockRelease', [key], [token]).catch((error: unknown) => {
      this.#options.onError?.(toRedisError('lock release after a failed acquire', error, { resource }));
    });
  }
}

/** The context `withLock` passes: `signal` and `fence` check the lock's validity when read. */
function contextOf(handle: LockHandle): LockContext {
  return {
    get signal() {
      return handle.signal;
    },
    get fence() {
      return handle.fence;
    },
    handle,
  };
}
