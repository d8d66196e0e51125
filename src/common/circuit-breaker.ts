import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { nodeOf } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import type { Duration } from './duration.js';
import { durationSchema, positiveInt } from './options.js';

/** Options for {@link CircuitBreaker}, in milliseconds. */
export interface CircuitBreakerOptions {
  /** Consecutive failures, at least, that open the circuit. */
  failureThreshold: number;
  /**
   * How long failures must have gone on, uninterrupted by a success, before they open the
   * circuit. This is what tells a dead Redis from a slow one: a hiccup of a few hundred ms makes
   * every call in it fail at once (many consecutive failures) but ends before this.
   */
  failureWindowMs: number;
  /** How long the circuit stays open before one call may probe again. */
  cooldownMs: number;
}

/** The `circuitBreaker` option every primitive takes, as users write it. */
export interface CircuitBreakerOption {
  /** Consecutive failures, at least, that open the circuit. Default `3`. */
  failureThreshold?: number;
  /** How long the failures must have gone on without a success. Default `'1s'`. */
  failureWindow?: Duration;
  /** How long Redis is skipped once open, before one call probes it. Default `'1s'`. */
  cooldown?: Duration;
}

/** Schema of the `circuitBreaker` option: `false`, or {@link CircuitBreakerOption}, to milliseconds. */
export const circuitBreakerSchema = z
  .union([
    z.literal(false),
    z
      .strictObject({
        failureThreshold: positiveInt().default(3),
        failureWindow: durationSchema({ allowZero: true }).default(1_000),
        cooldown: durationSchema().default(1_000),
      })
      .transform(
        (option): CircuitBreakerOptions => ({
          failureThreshold: option.failureThreshold,
          failureWindowMs: option.failureWindow,
          cooldownMs: option.cooldown,
        }),
      ),
  ])
  .prefault({});

/**
 * Stops a primitive from waiting on a Redis that is down: once calls have failed without a
 * success for `failureWindowMs` (and at least `failureThreshold` of them), the circuit opens and
 * calls skip Redis — answering by their failure policy at once instead of each waiting out a
 * timeout; after `cooldownMs` one call probes Redis, and a success closes the circuit. Time is
 * monotonic (`performance.now()`).
 */
export class CircuitBreaker {
  readonly #options: CircuitBreakerOptions;
  #failures = 0;
  #failingSince: number | undefined;
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
    this.#failingSince = undefined;
    this.#openedAt = undefined;
    this.#probing = false;
    return wasOpen;
  }

  /** Reports a call that failed or timed out. Returns true if this opened the circuit. */
  failure(): boolean {
    const now = performance.now();
    this.#failures++;
    this.#failingSince ??= now;
    const open =
      this.#probing ||
      (this.#failures >= this.#options.failureThreshold && now - this.#failingSince >= this.#options.failureWindowMs);
    if (open) {
      const wasClosed = this.#openedAt === undefined;
      this.#openedAt = now;
      this.#probing = false;
      return wasClosed;
    }
    return false;
  }
}

/**
 * One {@link CircuitBreaker} per Redis node: on a Cluster, failures on one master's slots open
 * only that master's circuit, so a dead master costs only its own keys. A standalone client has
 * one breaker. Breakers are keyed by node address (a failover's new master starts closed).
 */
export class NodeBreakers {
  readonly #redis: RedisLike;
  readonly #options: CircuitBreakerOptions;
  readonly #byNode = new Map<string, CircuitBreaker>();

  constructor(redis: RedisLike, options: CircuitBreakerOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  /** The breaker of the node that owns `key` (as the client sends it: `keyPrefix` included). */
  of(key: string): CircuitBreaker {
    return this.ofNode(nodeOf(this.#redis, key));
  }

  /** The breaker of a node by address (`host:port`, or `'standalone'`). */
  ofNode(node: string): CircuitBreaker {
    let breaker = this.#byNode.get(node);
    if (!breaker) {
      breaker = new CircuitBreaker(this.#options);
      this.#byNode.set(node, breaker);
    }
    return breaker;
  }

  /** Every node's breaker state, by node address. */
  states(): Record<string, CircuitBreaker['state']> {
    const states: Record<string, CircuitBreaker['state']> = {};
    for (const [node, breaker] of this.#byNode) states[node] = breaker.state;
    return states;
  }
}
