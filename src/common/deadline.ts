import { performance } from 'node:perf_hooks';
import { RedisTimeoutError, toRedisError } from './errors.js';

/**
 * Deadlines for Redis calls on one shared coarse timer instead of a `setTimeout` per call: a
 * pending call is filed in a bucket of {@link GRANULARITY_MS} by the time it gives up, and one
 * interval (running only while calls are pending, and never keeping the process alive) rejects
 * those whose time has come. A deadline fires up to one granule late.
 *
 * Times are `performance.now()` milliseconds: monotonic, so a wall-clock jump cannot fire or
 * postpone a deadline.
 */
export const GRANULARITY_MS = 5;

/** A call waiting for its deadline: `expire()` runs at the deadline unless `settled` by then. */
export interface Pending {
  settled: boolean;
  expire(): void;
}

const buckets = new Map<number, Pending[]>();
let filed = 0;
let sweeper: NodeJS.Timeout | undefined;

/**
 * Files `entry` to expire at `at` (a `performance.now()` time), for callers that settle their own
 * promise (one promise per call instead of {@link untilDeadline}'s wrapper around another).
 */
export function fileDeadline(entry: Pending, at: number): void {
  const index = Math.ceil(at / GRANULARITY_MS);
  const bucket = buckets.get(index);
  if (bucket) bucket.push(entry);
  else buckets.set(index, [entry]);
  filed++;
  if (!sweeper) {
    sweeper = setInterval(sweep, GRANULARITY_MS);
    sweeper.unref?.();
  }
}

function sweep(): void {
  const due = performance.now() / GRANULARITY_MS;
  for (const [index, bucket] of buckets) {
    if (index > due) continue;
    buckets.delete(index);
    filed -= bucket.length;
    for (const entry of bucket) if (!entry.settled) entry.expire();
  }
  if (filed === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

const noop = () => {};

/**
 * Settles with `promise`, or rejects with a {@link RedisTimeoutError} at `deadline`
 * (a `performance.now()` time). An operation made of several Redis steps passes the same
 * deadline to each, so the whole call — not each step — is bounded.
 *
 * The pending promise is not cancelled (Redis commands cannot be), so its late rejection is
 * swallowed here: a slow Redis never produces an unhandled rejection. Whether a command that
 * runs after its caller gave up may still have an effect is the caller's business (scripts that
 * change state carry their deadline to Redis and refuse to act past it). Other errors are
 * wrapped into a `RedscaleError` that keeps the client's error as `cause`.
 */
export function untilDeadline<T>(
  promise: Promise<T>,
  deadline: number,
  timeoutMs: number,
  operation: string,
  context?: Record<string, unknown>,
): Promise<T> {
  if (deadline <= performance.now()) {
    promise.catch(noop);
    return Promise.reject(new RedisTimeoutError(operation, timeoutMs, context));
  }
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = {
      settled: false,
      expire: () => {
        entry.settled = true;
        promise.catch(noop);
        reject(new RedisTimeoutError(operation, timeoutMs, context));
      },
    };
    fileDeadline(entry, deadline);
    promise.then(
      (value) => {
        if (entry.settled) return;
        entry.settled = true;
        resolve(value);
      },
      (error: unknown) => {
        if (entry.settled) return;
        entry.settled = true;
        reject(toRedisError(operation, error, context));
      },
    );
  });
}

/** {@link untilDeadline} with a deadline `timeoutMs` from now. */
export function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  operation: string,
  context?: Record<string, unknown>,
): Promise<T> {
  return untilDeadline(promise, performance.now() + timeoutMs, timeoutMs, operation, context);
}
