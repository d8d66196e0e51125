import type { RedscaleError } from '../common/errors.js';
import type { LockLostError } from './errors.js';

/** What a Lock has done since it was created; `Lock.stats()` returns a snapshot. */
export interface LockStats {
  /** Acquisitions that succeeded (a multi-resource acquisition counts once). */
  acquired: number;
  /** Acquisitions that found the resource held at least once (they waited, or `tryAcquire` gave up). */
  contended: number;
  /** Acquisitions that gave up because it stayed held (`LockTimeoutError`, or `null` from `tryAcquire`). */
  timeouts: number;
  /** Acquisitions that failed because Redis did (ERR_REDIS, ERR_TIMEOUT) or were aborted. */
  failures: number;
  /** Extensions granted (by hand or automatic). */
  extended: number;
  /** Releases that found the lock still held. */
  released: number;
  /** Locks lost while held (expired, or taken over): each one's `signal` aborted. */
  lost: number;
  /** Redis failures the lock absorbed (failed automatic extensions, releases after a failed acquire). */
  redisErrors: number;
}

/** Every counter at zero. */
export function emptyLockStats(): LockStats {
  return { acquired: 0, contended: 0, timeouts: 0, failures: 0, extended: 0, released: 0, lost: 0, redisErrors: 0 };
}

/** Events a Lock emits (listen with `lock.on(name, listener)`); built only when listened to. */
export interface LockEvents {
  /** Acquired: after `waitedMs` and `attempts` tries, with the fencing token of the first resource. */
  acquire: [{ resources: readonly string[]; waitedMs: number; attempts: number; fence: number }];
  /** An acquisition found the resource held (once per acquisition). */
  contention: [{ resources: readonly string[] }];
  /** An acquisition gave up after `waitedMs` because the resource stayed held. */
  timeout: [{ resources: readonly string[]; waitedMs: number }];
  /** An extension was granted. */
  extend: [{ resources: readonly string[]; ttlMs: number }];
  /** A release found the lock still held (`held: true`) or already gone (`held: false`). */
  release: [{ resources: readonly string[]; held: boolean }];
  /** A lock was lost while held: its `signal` aborted with `error`. */
  lost: [{ resources: readonly string[]; error: LockLostError }];
  /** A Redis call failed or timed out and the lock absorbed it: one event per `stats().redisErrors`. */
  'redis-error': [{ error: RedscaleError }];
}
