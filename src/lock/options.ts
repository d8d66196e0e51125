import { z } from 'zod';
import type { RedisLike } from '../client/types.js';
import type { Duration } from '../common/duration.js';
import type { RedscaleError } from '../common/errors.js';
import { InvalidOptionError } from '../common/errors.js';
import { durationSchema, MAX_TIMER_MS, prefixSchema, redisClientSchema } from '../common/options.js';
import { type Logger, loggerSchema } from '../observability/logger.js';
import type { LockHandle, MultiLockHandle } from './handle.js';
import { ttlSchema } from './lease.js';

const fn = <T>() => z.custom<T>((value) => typeof value === 'function', { message: 'a function' });

/** Most replicas a lock can ask to acknowledge a grant (a sanity bound, far above real deployments). */
export const MAX_REPLICAS = 100;

/** The `replicas` option (locks, semaphores, write buffers): how many replicas `WAIT` asks for. */
export const replicasSchema = z
  .number()
  .refine((n) => Number.isInteger(n) && n >= 0 && n <= MAX_REPLICAS, {
    message: `an integer from 0 to ${MAX_REPLICAS} (0: do not wait for replicas)`,
  })
  .default(0);

/** Constructor options every lock kind shares (`Lock`, `Semaphore`), with their defaults. */
export const leaseOptionsShape = {
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
  replicas: replicasSchema,
  replicationTimeout: durationSchema({ max: MAX_TIMER_MS }).default(500),
  onError: fn<(error: RedscaleError) => void>().optional(),
  logger: loggerSchema.optional(),
};

/** Per-call options every acquire shares. */
export const acquireOptionsShape = {
  ttl: ttlSchema.optional(),
  wait: durationSchema({ allowZero: true }).optional(),
  autoExtend: z.boolean().optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
};

/** Most resources one `acquireAll` takes: each costs two keys in one script. */
export const MAX_RESOURCES = 1_000;

/** Throws the named error a bad resource name deserves. */
export function checkResource(resource: unknown, where: string): asserts resource is string {
  if (typeof resource !== 'string' || resource.length === 0) {
    throw new InvalidOptionError('resource', resource, 'a non-empty string naming what to lock', where);
  }
}

/** Validates a list of resources and drops repeats (a resource is locked once). */
export function checkResources(resources: unknown, where: string): string[] {
  if (!Array.isArray(resources) || resources.length === 0 || resources.length > MAX_RESOURCES) {
    throw new InvalidOptionError(
      'resources',
      resources,
      `an array of 1 to ${MAX_RESOURCES} non-empty strings naming what to lock`,
      where,
    );
  }
  resources.forEach((resource: unknown, i) => {
    if (typeof resource !== 'string' || resource.length === 0) {
      throw new InvalidOptionError(`resources[${i}]`, resource, 'a non-empty string naming what to lock', where);
    }
  });
  return [...new Set(resources as string[])];
}

/** Throws the named error a non-function deserves. */
export function checkFunction(value: unknown, where: string): void {
  if (typeof value !== 'function') throw new InvalidOptionError('fn', value, 'a function to run while holding', where);
}

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
  /**
   * Replicas that must acknowledge a grant (Redis `WAIT`) before `acquire` resolves: with a
   * primary behind Sentinel, `1` means a failover to an acknowledging replica keeps the lock.
   * When fewer acknowledge within `replicationTimeout`, the lock is released and `acquire` rejects
   * with a {@link LockNotReplicatedError}. Costs one more round trip per acquire. Default `0`
   * (do not wait: the grant is trusted as soon as the primary gives it).
   */
  replicas?: number;
  /** How long Redis waits for `replicas` to acknowledge a grant (1 ms or more). Default `'500ms'`. */
  replicationTimeout?: Duration;
  /** Called with Redis failures the lock absorbed (a failed auto-extension it will retry). */
  onError?: (error: RedscaleError) => void;
  /**
   * A pino/console-like logger: absorbed Redis failures go to `warn`, a lock lost while held to
   * `error`. Default: none (nothing is logged).
   */
  logger?: Logger;
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

/** What `withLocks` gives the function it runs. */
export interface MultiLockContext {
  /** Aborts with a LockLostError when any of the locks is lost. */
  readonly signal: AbortSignal;
  /** The fencing token of each resource. */
  readonly fences: ReadonlyMap<string, number>;
  /** The handle itself. */
  readonly handle: MultiLockHandle;
}
