import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { Duration } from '../common/duration.js';
import { RedscaleError, toRedisError } from '../common/errors.js';
import { durationSchema, MAX_TIMER_MS, parseOptions } from '../common/options.js';
import { LockLostError } from './errors.js';

/** What a lease does in Redis; the lease itself keeps time, the signal and the extension loop. */
export interface LeaseOperations {
  /**
   * Gives every part of the lease a new ttl before `deadline` (`performance.now()` ms).
   * Resolves `false` when Redis no longer holds it; rejects when Redis fails or is too slow.
   */
  extend(ttlMs: number, deadline: number): Promise<boolean>;
  /** Releases every part still held; resolves `true` when all of it was still held. */
  release(deadline: number): Promise<boolean>;
}

/** What a lease is made of. */
export interface LeaseSettings {
  /** What is held, for errors (`LockLostError.resource`). */
  name: string;
  /** The ttl it was acquired with, in ms. */
  ttlMs: number;
  /** Longest one Redis call (extend, release) may take, in ms. */
  timeoutMs: number;
  /** Whether to extend it every third of its ttl until released. */
  autoExtend: boolean;
  /** `performance.now()` when the acquiring command was sent: validity counts from there. */
  sentAt: number;
  /** Receives Redis failures the lease absorbed (a failed auto-extension it retries). */
  onError: ((error: RedscaleError) => void) | undefined;
  /** How to extend and release it in Redis. */
  operations: LeaseOperations;
  /** Told once when the lease is lost while held (for counters and events). */
  onLost?: ((error: LockLostError) => void) | undefined;
}

/** A ttl a timer can wait for (a longer one would fire `setTimeout` at once). */
export const ttlSchema = durationSchema({ min: 10, max: MAX_TIMER_MS });

const extendSchema = z.strictObject({ ttl: ttlSchema });

/** Clock drift allowance, as Redlock: 1% of the ttl plus 2 ms. */
function validityOf(ttlMs: number): number {
  return ttlMs - Math.round(ttlMs * 0.01) - 2;
}

/**
 * Something held in Redis for a while: a lock, several locks, or semaphore permits. Its validity
 * is measured on this process's monotonic clock from the moment the acquiring command was sent
 * (minus a drift allowance), so a wall-clock jump cannot make a lost lease look held.
 *
 * `held`, `signal.aborted`, `signal.reason`, `signal.throwIfAborted()` and `fence` all check the
 * validity when they are read: after a synchronous stall past the ttl (a long GC pause, a blocked
 * event loop) they agree that the lease is lost before any timer has had a chance to run.
 */
export class Lease {
  readonly #settings: LeaseSettings;
  // Created when someone first asks for `signal`: a bare acquire/release pays for neither the
  // controller nor the expiry timer.
  #controller: AbortController | undefined;
  #signal: AbortSignal | undefined;
  #lost: LockLostError | undefined;
  #validUntil: number;
  #ttlMs: number;
  #timer: NodeJS.Timeout | undefined;
  #released = false;
  #lastError: unknown;

  constructor(settings: LeaseSettings) {
    this.#settings = settings;
    this.#ttlMs = settings.ttlMs;
    this.#validUntil = settings.sentAt + validityOf(settings.ttlMs);
    if (settings.autoExtend) this.#schedule();
  }

  /**
   * Aborts with a {@link LockLostError} when the lease is lost (never on release). Reading
   * `aborted` or `reason` checks the validity first, so it never reports a lost lease as held.
   */
  get signal(): AbortSignal {
    this.checkValidity();
    if (!this.#signal) {
      this.#controller = new AbortController();
      this.#signal = checkingSignal(this.#controller, () => this.checkValidity());
      if (this.#lost) this.#controller.abort(this.#lost);
      else if (!this.#settings.autoExtend) this.#schedule();
    }
    return this.#signal;
  }

  /** Whether this process still holds the lease, by its own monotonic clock (false once released). */
  get held(): boolean {
    this.checkValidity();
    return !this.#released && !this.#lost;
  }

  /** Milliseconds of validity left, by this process's monotonic clock. */
  get remainingMs(): number {
    this.checkValidity();
    return Math.max(0, Math.floor(this.#validUntil - performance.now()));
  }

  /** Why the lease was lost, if it was; `signal` aborted with this error. */
  get lostError(): LockLostError | undefined {
    this.checkValidity();
    return this.#lost;
  }

  /**
   * Gives the lease a new ttl (default: the last one it was given), counted from now; automatic
   * extensions use it from then on.
   * @throws LockLostError when Redis no longer holds it; InvalidOptionError for a bad ttl; a
   * RedscaleError with code ERR_TIMEOUT or ERR_REDIS when Redis fails (the lease is kept until its
   * validity runs out).
   */
  async extend(ttl?: Duration): Promise<void> {
    const ttlMs =
      ttl === undefined ? this.#ttlMs : parseOptions(extendSchema, { ttl }, `${this.constructor.name}.extend()`).ttl;
    this.checkValidity();
    if (this.#lost) throw this.#lost;
    if (this.#released) throw new LockLostError(this.#settings.name, 'not-held');
    const { timeoutMs, operations, name } = this.#settings;
    const sentAt = performance.now();
    let extended: boolean;
    try {
      extended = await operations.extend(ttlMs, sentAt + timeoutMs);
    } catch (error) {
      throw toRedisError('lock extend', error, { resource: name });
    }
    // A loss someone saw while the reply travelled stays final. Otherwise a granted extension
    // that arrives after the old validity ran out leaves no gap: it was sent before, and Redis
    // only grants it while the lock still exists.
    if (this.#lost) throw this.#lost;
    if (!extended) {
      const lost = new LockLostError(name, 'not-held');
      this.#lose(lost);
      throw lost;
    }
    if (this.#released) return;
    this.#ttlMs = ttlMs;
    this.#validUntil = sentAt + validityOf(ttlMs);
    if (this.#settings.autoExtend || this.#controller) this.#schedule();
  }

  /**
   * Releases the lease if this holder still holds it; never touches another holder's.
   * Resolves `true` when released, `false` when it was no longer (all) held.
   * @throws a RedscaleError when Redis fails (the lease then expires by its ttl).
   */
  async release(): Promise<boolean> {
    this.#released = true;
    clearTimeout(this.#timer);
    const { timeoutMs, operations, name } = this.#settings;
    try {
      return await operations.release(performance.now() + timeoutMs);
    } catch (error) {
      throw toRedisError('lock release', error, { resource: name });
    }
  }

  /**
   * Ends the lease when an `await using` scope exits: releases it, and rejects with the
   * {@link LockLostError} if it was lost while held (the scope's work may have overlapped with
   * another holder's), as `withLock` does. A Redis failure on release is reported to `onError`,
   * not thrown: the lease then expires by its ttl.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    // Released by hand: the caller has taken care of it (and seen what release() said).
    if (this.#released) return;
    const lost = this.lostError;
    try {
      await this.release();
    } catch (error) {
      if (error instanceof RedscaleError) this.#settings.onError?.(error);
    }
    if (lost) throw lost;
  }

  /** Marks the lease lost if its validity has run out (the timers may not have run yet). */
  protected checkValidity(): void {
    if (!this.#lost && !this.#released && performance.now() >= this.#validUntil) {
      this.#lose(new LockLostError(this.#settings.name, 'expired', this.#lastError));
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (this.#released || this.#lost) return;
    const left = this.#validUntil - performance.now();
    if (left <= 0) {
      this.#lose(new LockLostError(this.#settings.name, 'expired', this.#lastError));
      return;
    }
    // With auto-extension, extend after a third of the ttl, retrying on failure until validity
    // runs out; without it, the lease is lost when its validity ends. ttls are at most
    // MAX_TIMER_MS, so no delay here overflows a timer.
    const delay = this.#settings.autoExtend ? Math.min(left, this.#ttlMs / 3) : left;
    this.#timer = setTimeout(() => void this.#tick(), Math.max(1, Math.ceil(delay)));
    this.#timer.unref?.();
  }

  async #tick(): Promise<void> {
    this.checkValidity();
    if (this.#released || this.#lost) return;
    if (!this.#settings.autoExtend) {
      this.#schedule();
      return;
    }
    try {
      await this.extend();
    } catch (error) {
      if (error instanceof LockLostError) return;
      this.#lastError = error;
      if (error instanceof RedscaleError) this.#settings.onError?.(error);
      // Redis did not answer: try again soon, until the lease's validity runs out.
      clearTimeout(this.#timer);
      this.checkValidity();
      if (this.#lost || this.#released) return;
      const left = this.#validUntil - performance.now();
      this.#timer = setTimeout(() => void this.#tick(), Math.max(1, Math.min(left, this.#ttlMs / 10)));
      this.#timer.unref?.();
    }
  }

  #lose(error: LockLostError): void {
    clearTimeout(this.#timer);
    if (this.#lost) return;
    this.#lost = error;
    this.#controller?.abort(error);
    this.#settings.onLost?.(error);
  }
}

const abortedGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')?.get;
const reasonGetter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')?.get;

/**
 * The controller's signal, with `aborted`, `reason` and `throwIfAborted()` running `check` first
 * (AbortSignal cannot be subclassed: its constructor is not public). Everything else — listeners,
 * `AbortSignal.any`, Node APIs taking a `signal` — sees an ordinary AbortSignal.
 */
function checkingSignal(controller: AbortController, check: () => void): AbortSignal {
  const signal = controller.signal;
  if (!abortedGetter || !reasonGetter) return signal;
  Object.defineProperties(signal, {
    aborted: {
      configurable: true,
      get() {
        check();
        return abortedGetter.call(signal) as boolean;
      },
    },
    reason: {
      configurable: true,
      get() {
        check();
        return reasonGetter.call(signal) as unknown;
      },
    },
    throwIfAborted: {
      configurable: true,
      writable: true,
      value() {
        check();
        AbortSignal.prototype.throwIfAborted.call(signal);
      },
    },
  });
  return signal;
}
