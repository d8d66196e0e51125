import type { RedscaleError } from '../common/errors.js';
import { toRedisError } from '../common/errors.js';
import { LockLostError } from './errors.js';
import type { Lease } from './lease.js';

/**
 * Runs `fn` while `lease` is held, then releases it. Rejects with the {@link LockLostError} if the
 * lease was lost meanwhile — even if `fn` succeeded, since its work may have overlapped with
 * another holder's — keeping `fn`'s own error as `cause`. A Redis failure on release is reported
 * to `onError` and is not an error of its own: the lease expires by its ttl.
 */
export async function runWhileHeld<C, T>(
  lease: Lease,
  name: string,
  context: C,
  fn: (context: C) => Promise<T> | T,
  onError: ((error: RedscaleError) => void) | undefined,
): Promise<T> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown };
  try {
    outcome = { ok: true, value: await fn(context) };
  } catch (error) {
    outcome = { ok: false, error };
  }
  const lost = lease.lostError;
  let released = false;
  try {
    released = await lease.release();
  } catch (error) {
    onError?.(toRedisError('lock release', error, { resource: name }));
    released = !lost;
  }
  if (lost) {
    if (!outcome.ok && outcome.error !== lost) throw new LockLostError(name, lost.reason, outcome.error);
    throw lost;
  }
  if (!released) throw new LockLostError(name, 'not-held', outcome.ok ? undefined : outcome.error);
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
