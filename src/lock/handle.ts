import { performance } from 'node:perf_hooks';
import type { RedisLike } from '../client/types.js';
import { withTimeout } from '../common/deadline.js';
import { RedscaleError, toRedisError } from '../common/errors.js';
import { runScript } from '../scripts/registry.js';
import { LockLostError } from './errors.js';

/** What a handle needs from the lock that made it. */
export interface HandleContext {
  redis: RedisLike;
  key: string;
  resource: string;
  token: string;
  fence: number;
  ttlMs: number;
  timeoutMs: number;
  autoExtend: boolean;
  /** `performance.now()` when the acquire command was sent: validity counts from there. */
  sentAt: number;
  onError: ((error: RedscaleError) => void) | undefined;
}

/** Clock drift allowance, as Redlock: 1% of the ttl plus 2 ms. */
function validityOf(ttlMs: number): number {
  return ttlMs - Math.round(ttlMs * 0.01) - 2;
}

/**
 * A held lock. Its validity is measured on this process's monotonic clock from the moment the
 * acquire command was sent (minus a drift allowance), so a wall-clock jump cannot make a lost
 * lock look held. `signal` aborts, with a {@link LockLostError}, the moment the lock is lost.
 */
export class LockHandle {
  /** The locked resource. */
  readonly resource: string;
  /** This acquisition's random token; only it can extend or release the lock. */
  readonly token: string;
  /**
   * The fencing token: a per-resource number that only ever increases. Send it with every write
   * to the protected resource and have the resource reject a number lower than one it has seen.
   */
  readonly fence: number;
  readonly #context: HandleContext;
  // Created when someone first asks for `signal` (withLock always does): a bare acquire/release
  // pays for neither the controller nor the expiry timer.
  #controller: AbortController | undefined;
  #lost: LockLostError | undefined;
  #validUntil: number;
  #timer: NodeJS.Timeout | undefined;
  #released = false;
  #lastError: unknown;

  constructor(context: HandleContext) {
    this.#context = context;
    this.resource = context.resource;
    this.token = context.token;
    this.fence = context.fence;
    this.#validUntil = context.sentAt + validityOf(context.ttlMs);
    if (context.autoExtend) this.#schedule();
  }

  /** Aborts with a {@link LockLostError} when the lock is lost (never on release). */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#lost) this.#controller.abort(this.#lost);
      else if (!this.#context.autoExtend) this.#schedule();
    }
    return this.#controller.signal;
  }

  /** Whether this process still holds the lock, by its own monotonic clock. */
  get held(): boolean {
    return !this.#released && !this.#lost && this.remainingMs > 0;
  }

  /** Milliseconds of validity left, by this process's monotonic clock. */
  get remainingMs(): number {
    return Math.max(0, Math.floor(this.#validUntil - performance.now()));
  }

  /**
   * Gives the lock a new ttl (default: the one it was acquired with), counted from now.
   * @throws LockLostError when Redis no longer holds this token; a RedscaleError when Redis fails.
   */
  async extend(ttlMs = this.#context.ttlMs): Promise<void> {
    if (this.#lost) throw this.#lost;
    const { redis, key, token, timeoutMs, resource } = this.#context;
    const sentAt = performance.now();
    let extended: unknown;
    try {
      extended = await withTimeout(runScript(redis, 'lockExtend', [key], [token, ttlMs]), timeoutMs, 'lock extend', {
        resource,
      });
    } catch (error) {
      throw toRedisError('lock extend', error, { resource });
    }
    if (extended !== 1) {
      const lost = new LockLostError(resource, 'not-held');
      this.#lose(lost);
      throw lost;
    }
    this.#validUntil = sentAt + validityOf(ttlMs);
    if (this.#context.autoExtend || this.#controller) this.#schedule();
  }

  /**
   * Releases the lock if this token still holds it; never deletes another holder's lock.
   * Resolves `true` when released, `false` when it was no longer held.
   * @throws a RedscaleError when Redis fails (the lock then expires by its ttl).
   */
  async release(): Promise<boolean> {
    this.#released = true;
    clearTimeout(this.#timer);
    const { redis, key, token, timeoutMs, resource } = this.#context;
    try {
      const released = await withTimeout(runScript(redis, 'lockRelease', [key], [token]), timeoutMs, 'lock release', {
        resource,
      });
      return released === 1;
    } catch (error) {
      throw toRedisError('lock release', error, { resource });
    }
  }

  /** Why the lock was lost, if it was; `signal` aborted with this error. */
  get lostError(): LockLostError | undefined {
    if (!this.#lost && !this.#released && this.remainingMs <= 0)
      this.#lose(new LockLostError(this.resource, 'expired', this.#lastError));
    return this.#lost;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#released || this.#lost) return;
    const left = this.#validUntil - performance.now();
    if (left <= 0) {
      this.#lose(new LockLostError(this.resource, 'expired', this.#lastError));
      return;
    }
    // With auto-extension, extend after a third of the ttl, retrying on failure until validity
    // runs out; without it, the lock is lost when its validity ends.
    const delay = this.#context.autoExtend ? Math.min(left, this.#context.ttlMs / 3) : left;
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, delay));
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    if (this.#released || this.#lost) return;
    if (!this.#context.autoExtend || this.#validUntil - performance.now() <= 0) {
      this.#lose(new LockLostError(this.resource, 'expired', this.#lastError));
      return;
    }
    try {
      await this.extend();
    } catch (error) {
      if (error instanceof LockLostError) return;
      this.#lastError = error;
      if (error instanceof RedscaleError) this.#context.onError?.(error);
      // Redis did not answer: try again soon, until the lock's validity runs out.
      clearTimeout(this.#timer);
      const left = this.#validUntil - performance.now();
      if (left <= 0) {
        this.#lose(new LockLostError(this.resource, 'expired', error));
        return;
      }
      this.#timer = setTimeout(() => this.#tick(), Math.max(1, Math.min(left, this.#context.ttlMs / 10)));
      this.#timer.unref?.();
    }
  }

  #lose(error: LockLostError): void {
    clearTimeout(this.#timer);
    if (this.#lost) return;
    this.#lost = error;
    this.#controller?.abort(error);
  }
}
