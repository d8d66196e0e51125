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

/** A call waiting for its deadline: `expire()` runs at the deadline unless it settled by then. */
export interface Pending {
  settled: boolean;
  expire(): void;
  /** The bucket it is filed in, until it settles or expires, and its neighbours there (set by {@link fileDeadline}). */
  bucket?: Bucket | undefined;
  prev?: Pending | undefined;
  next?: Pending | undefined;
}

/** The calls that give up in one granule: a list linked through the calls themselves (no allocation, no hashing). */
interface Bucket {
  index: number;
  head: Pending | undefined;
}

/**
 * The host's own timers, taken when this module loads: where a test suite fakes timers (Vitest,
 * Jest, sinon, node:test), deadlines are still reckoned on perf_hooks' clock, which fakes leave
 * alone, and Redis still answers in real time. A sweeper on a fake clock never fired (a stalled
 * Redis hung its caller), and stood as the sweeper after real timers came back, so no deadline
 * in the process fired again.
 */
const { setInterval: startInterval, clearInterval: stopInterval } = globalThis;

const buckets = new Map<number, Bucket>();
let filed = 0;
let sweeper: NodeJS.Timeout | undefined;

/**
 * Files `entry` to expire at `at` (a `performance.now()` time), for callers that settle their own
 * promise (one promise per call instead of {@link untilDeadline}'s wrapper around another); they
 * call {@link settleDeadline} when it settles.
 */
export function fileDeadline(entry: Pending, at: number): void {
  const index = Math.ceil(at / GRANULARITY_MS);
  let bucket = buckets.get(index);
  if (!bucket) {
    bucket = { index, head: undefined };
    buckets.set(index, bucket);
  }
  const head = bucket.head;
  entry.prev = undefined;
  entry.next = head;
  if (head) head.prev = entry;
  bucket.head = entry;
  entry.bucket = bucket;
  filed++;
  if (!sweeper) {
    sweeper = startInterval(sweep, GRANULARITY_MS);
    sweeper.unref?.();
  }
}

/**
 * Marks `entry` settled and unfiles it at once: a settled call is not kept (with its reply) until
 * its deadline, which under load meant a whole timeout's worth of calls surviving into the old
 * generation of the heap.
 */
export function settleDeadline(entry: Pending): void {
  entry.settled = true;
  unfile(entry);
}

function unfile(entry: Pending): void {
  const bucket = entry.bucket;
  if (!bucket) return;
  const { prev, next } = entry;
  if (prev) prev.next = next;
  else bucket.head = next;
  if (next) next.prev = prev;
  entry.bucket = entry.prev = entry.next = undefined;
  filed--;
  // An emptied bucket goes at once, so the sweeper stops soon after the last call settles.
  if (!bucket.head && buckets.get(bucket.index) === bucket) buckets.delete(bucket.index);
}

function sweep(): void {
  const now = performance.now() / GRANULARITY_MS;
  for (const [index, bucket] of buckets) {
    if (index > now) continue;
    buckets.delete(index);
    // Listed before any expires: an expiry's listeners may settle others of the bucket.
    const expiring: Pending[] = [];
    for (let entry = bucket.head; entry; entry = entry.next) expiring.push(entry);
    for (const entry of expiring) {
      if (entry.bucket !== bucket) continue;
      unfile(entry);
      if (!entry.settled) entry.expire();
    }
  }
  if (filed === 0 && sweeper) {
    stopInterval(sweeper);
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
        settleDeadline(entry);
        promise.catch(noop);
        reject(new RedisTimeoutError(operation, timeoutMs, context));
      },
    };
    fileDeadline(entry, deadline);
    promise.then(
      (value) => {
        if (entry.settled) return;
        settleDeadline(entry);
        resolve(value);
      },
      (error: unknown) => {
        if (entry.settled) return;
        settleDeadline(entry);
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

/** How many filed calls are still waiting for an answer (neither settled nor expired): for tests. */
export function pendingDeadlines(): number {
  let pending = 0;
  for (const bucket of buckets.values())
    for (let entry = bucket.head; entry; entry = entry.next) if (!entry.settled) pending++;
  return pending;
}
