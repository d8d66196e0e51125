import { performance } from 'node:perf_hooks';

/** Options for {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before one call may probe again, in ms. */
  cooldownMs: number;
}

/**
 * Stops a primitive from hammering a Redis that is down: after `failureThreshold` consecutive
 * failures the circuit opens and calls skip Redis (answering by their failure policy at once,
 * instead of each waiting out a timeout); after `cooldownMs` one call probes Redis, and a
 * success closes the circuit. Time is monotonic (`performance.now()`).
 */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  #failures = 0;
  #openedAt: number | undefined;
  #probing = false;

  constructor(options: CircuitBreakerOptions) {
    this.#options = options;
  }

  /** `closed` (use Redis), `open` (skip Redis) or `half-open` (one probe in flight). */
  get state(): 'closed' | 'open' | 'half-open' {
    if (this.#openedAt === undefined) return 'closed';
    return this.#probing ? 'half-open' : 'open';
  }

  /** Milliseconds until the next probe may run; 0 when closed. */
  get retryInMs(): number {
    if (this.#openedAt === undefined) return 0;
    return Math.max(0, Math.ceil(this.#openedAt + this.#options.cooldownMs - performance.now()));
  }

  /** Whether this call may use Redis. When it returns true the caller must report the outcome. */
  tryPass(): boolean {
    if (this.#openedAt === undefined) return true;
    if (this.#probing || performance.now() - this.#openedAt < this.#options.cooldownMs) return false;
    this.#probing = true;
    return true;
  }

  /** Reports a call that reached Redis and got an answer. Returns true if this closed the circuit. */
  success(): boolean {
    const wasOpen = this.#openedAt !== undefined;
    this.#failures = 0;
    this.#openedAt = undefined;
    this.#probing = false;
    return wasOpen;
  }

  /** Reports a call that failed or timed out. */
  failure(): void {
    this.#failures++;
    if (this.#probing || this.#failures >= this.#options.failureThreshold) {
      this.#openedAt = performance.now();
      this.#probing = false;
    }
  }
}
