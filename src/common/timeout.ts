import { RedisTimeoutError, toRedisError } from './errors.js';

const noop = () => {};

/**
 * Settles with `promise`, or rejects with a {@link RedisTimeoutError} after `timeoutMs`.
 *
 * The pending promise is not cancelled (Redis commands cannot be), so its late rejection is
 * swallowed here: a slow Redis must never produce an unhandled rejection. Other errors are
 * wrapped into a `RedscaleError` that keeps the client's error as `cause`.
 */
export function withTimeout<T>(
  promise: Promise<T>,
  timeoutMs: number,
  operation: string,
  context?: Record<string, unknown>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      promise.catch(noop);
      reject(new RedisTimeoutError(operation, timeoutMs, context));
    }, timeoutMs);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(toRedisError(operation, error, context));
      },
    );
  });
}
