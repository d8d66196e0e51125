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

interface Pending {
  settled: boolean;
  expire(): void;
}

/**
 * Pending calls by the granule their deadline falls in. A call leaves its bucket when it settles,
 * so nothing of it outlives its reply (with thousands of calls a second, settled calls kept until
 * their deadline would survive young-generation GCs and cost far more than the calls).
 */
const buckets = new Map<number, Set<Pending>>();
let sweeper: NodeJS.Timeout | undefined;

function file(entry: Pending, at: number): Set<Pending> {
  const index = Math.ceil(at / GRANULARITY_MS);
  let bucket = buckets.get(index);
  if (!bucket) {
    bucket = new Set();
    buckets.set(index, bucket);
  }
  bucket.add(entry);
  if (!sweeper) {
    sweeper = setInterval(sweep, GRANULARITY_MS);
    sweeper.unref?.();
  }
  return bucket;
}

function sweep(): void {
  const due = performance.now() / GRANULARITY_MS;
  for (const [index, bucket] of buckets) {
    if (index > due && bucket.size > 0) continue;
    buckets.delete(index);
    for (const entry of bucket) if (!entry.settled) entry.expire();
  }
  if (buckets.size === 0 && sweeper) {
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
    const bucket = file(entry, deadline);
    promise.then(
      (value) => {
        if (entry.settled) return;
        entry.settled = true;
        bucket.delete(entry);
        resolve(value);
      },
      (error: unknown) => {
        if (entry.settled) return;
        entry.settled = true;
        bucket.delete(entry);
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
