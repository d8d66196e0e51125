import { formatDuration } from '../common/duration.js';
import { RedscaleError } from '../common/errors.js';

/** The lock could not be acquired before `wait` ran out: someone else held it all along. */
export class LockTimeoutError extends RedscaleError {
  /** The resource that could not be locked. */
  readonly resource: string;
  /** How long the caller waited, in ms. */
  readonly waitedMs: number;
  /** How many times the lock was tried. */
  readonly attempts: number;

  constructor(resource: string, waitedMs: number, attempts: number) {
    super(
      'ERR_LOCK_TIMEOUT',
      `redscale: lock "${resource}" is held by someone else; gave up after waiting ${formatDuration(Math.round(waitedMs))} (${attempts} attempt${attempts === 1 ? '' : 's'})`,
      { context: { resource, waitedMs: Math.round(waitedMs), attempts } },
    );
    this.resource = resource;
    this.waitedMs = Math.round(waitedMs);
    this.attempts = attempts;
  }
}

/** Why a held lock stopped being held. */
export type LockLossReason =
  /** Its ttl ran out without an extension (or before one could reach Redis). */
  | 'expired'
  /** Redis no longer has this holder's token: it expired there, or was evicted or taken over. */
  | 'not-held';

/**
 * A lock this process held is no longer held. Work done after this may overlap with another
 * holder's: stop, and let the protected resource reject stale writes by their fencing token.
 * `cause` is the Redis error when Redis could not be reached to extend the lock.
 */
export class LockLostError extends RedscaleError {
  /** The resource whose lock was lost. */
  readonly resource: string;
  /** Why it was lost (see {@link LockLossReason}). */
  readonly reason: LockLossReason;

  constructor(resource: string, reason: LockLossReason, cause?: unknown) {
    const why =
      reason === 'expired'
        ? 'its ttl ran out before it could be extended'
        : 'Redis no longer holds this token (it expired, was evicted, or another holder took the lock)';
    super('ERR_LOCK_LOST', `redscale: lock "${resource}" was lost: ${why}`, {
      cause,
      context: { resource, reason },
    });
    this.resource = resource;
    this.reason = reason;
  }
}

/**
 * A lock (or semaphore permits) was granted on the primary, but fewer replicas than the
 * `replicas` option asks for acknowledged the grant within `replicationTimeout` (Redis `WAIT`).
 * The grant was given back (a token-checked release): the caller does not hold it. Retrying is
 * safe; a failover right now could have lost the grant, which is what the option guards against.
 */
export class LockNotReplicatedError extends RedscaleError {
  /** The resource whose grant was given back. */
  readonly resource: string;
  /** Replicas the caller asked for. */
  readonly required: number;
  /** Replicas that acknowledged in time (the fewest, over the Cluster slots the grant spans). */
  readonly acknowledged: number;

  constructor(resource: string, required: number, acknowledged: number, timeoutMs: number) {
    super(
      'ERR_NOT_REPLICATED',
      `redscale: lock "${resource}" was granted, but only ${acknowledged} of the ${required} replica${required === 1 ? '' : 's'} asked for acknowledged it within ${formatDuration(timeoutMs)}; it was released`,
      { context: { resource, required, acknowledged, timeoutMs } },
    );
    this.resource = resource;
    this.required = required;
    this.acknowledged = acknowledged;
  }
}
