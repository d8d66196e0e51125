import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError } from '../common/errors.js';
import { LockTimeoutError } from './errors.js';

/** What one acquisition attempt found: the prize, or that someone holds it (and for how long, if known). */
export type AttemptResult<T> = { acquired: T } | { busyForMs: number | undefined };

/** How an acquisition waits. */
export interface WaitPlan {
  /** What is being acquired, for errors. */
  name: string;
  /** Operation name for an abort, e.g. `'lock acquire'`. */
  operation: string;
  waitMs: number;
  retryDelay: { min: number; max: number };
  signal: AbortSignal | undefined;
}

/**
 * Runs `attempt` until it acquires or `waitMs` has passed, sleeping between tries with full
 * jitter over an exponential ceiling (`retryDelay.min` doubling up to `retryDelay.max`), and never
 * past the moment the current holder's lease ends. Errors from `attempt` (Redis failures) end the
 * wait at once: a broken Redis is never reported as a busy resource.
 * @throws LockTimeoutError when the resource stayed busy; AbortedError when `signal` aborts.
 */
export async function acquireWithin<T>(
  plan: WaitPlan,
  attempt: (attemptNumber: number) => Promise<AttemptResult<T>>,
): Promise<T> {
  const { name, operation, waitMs, retryDelay, signal } = plan;
  const started = performance.now();
  for (let attemptNumber = 1; ; attemptNumber++) {
    if (signal?.aborted) throw new AbortedError(operation, signal.reason, { resource: name });
    const result = await attempt(attemptNumber);
    if ('acquired' in result) return result.acquired;
    const waited = performance.now() - started;
    const left = waitMs - waited;
    if (left <= 0) throw new LockTimeoutError(name, waited, attemptNumber);
    const ceiling = Math.min(retryDelay.max, retryDelay.min * 2 ** Math.min(attemptNumber - 1, 20));
    const holderLeft =
      result.busyForMs !== undefined && result.busyForMs > 0 ? result.busyForMs : Number.POSITIVE_INFINITY;
    const delay = Math.max(1, Math.min(left, holderLeft, Math.round(Math.random() * ceiling) + 1));
    try {
      await sleep(delay, undefined, signal ? { signal } : undefined);
    } catch {
      throw new AbortedError(operation, signal?.reason, { resource: name });
    }
  }
}
