import { performance } from 'node:perf_hooks';
import { nodeOf } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { type CircuitBreaker, type CircuitBreakerOptions, NodeBreakers } from '../common/circuit-breaker.js';
import { fileDeadline, type Pending, settleDeadline } from '../common/deadline.js';
import { RedisTimeoutError, RedscaleError, toRedisError } from '../common/errors.js';
import { type ServerClock, ServerClocks } from '../common/server-clock.js';

/**
 * The Redis time one public call may spend: one `timeout` in all, shared by every Redis step of
 * the call (read, fill lock, tag versions, write), so a Redis that stalls between steps costs one
 * timeout, not one per step. Time spent outside Redis — the loader, waiting for another
 * instance's load — moves the deadline instead of using it up.
 */
export class Budget {
  /** `performance.now()` time past which no Redis step of this call may run. */
  deadline: number;
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
    this.deadline = performance.now() + timeoutMs;
  }

  /** Whether Redis time is left. */
  get left(): boolean {
    return this.deadline > performance.now();
  }

  /** Runs work that is not Redis's, moving the deadline by as long as it took. */
  async excluding<T>(work: () => Promise<T> | T): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.deadline += performance.now() - started;
    }
  }
}

/** Where the gate's outcomes go: one place counts and reports them. */
export interface GateSink {
  /** A Redis call failed or timed out (reported and counted once, here). */
  redisError(error: RedscaleError): void;
  /** A call was not sent because its node's circuit is open. */
  skipped(): void;
  /** A node's circuit opened or closed again. */
  breaker?(node: string, state: 'open' | 'closed'): void;
}

/**
 * Every Redis call the cache makes goes through here: under the call's {@link Budget}, and under
 * the circuit breaker of the node that owns the key (a dead Cluster master opens only its own
 * breaker, so it costs only its own slots). Each failure is reported exactly once. Also keeps one
 * {@link ServerClock} per node, so scripts can carry their caller's deadline in server time.
 */
export class RedisGate {
  readonly redis: RedisLike;
  readonly #breakers: NodeBreakers | undefined;
  readonly #clocks: ServerClocks;
  readonly #sink: GateSink;

  constructor(redis: RedisLike, breaker: CircuitBreakerOptions | false, sink: GateSink) {
    this.redis = redis;
    this.#clocks = new ServerClocks(redis);
    this.#breakers = breaker ? new NodeBreakers(redis, breaker) : undefined;
    this.#sink = sink;
  }

  /** The node that owns `key` as Redis sees it (the client's `keyPrefix` included). */
  nodeOf(key: string): string {
    return nodeOf(this.redis, key);
  }

  /**
   * Runs one Redis call for `node` (see {@link nodeOf}) before `budget` runs out. Rejects at once,
   * sending nothing, when the node's circuit is open or no time is left. Every cache operation
   * passes here, a hit included: one promise per call, and the error context built only on failure.
   */
  call<T>(
    operation: string,
    node: string,
    budget: Budget,
    run: () => Promise<T>,
    context?: Record<string, unknown>,
  ): Promise<T> {
    return this.#send<T, T>(operation, node, budget, run, undefined, context);
  }

  /**
   * {@link call}, with the caller's next step run as soon as the reply or the failure (reported as
   * ever, then passed as `error`) is known; what `next` returns or throws settles the one promise
   * returned. The cache's hit path: one promise and one hop through the microtask queue, not one
   * per layer.
   */
  callThen<T, R>(operation: string, node: string, budget: Budget, run: () => Promise<T>, next: Next<T, R>): Promise<R> {
    return this.#send<T, R>(operation, node, budget, run, next, undefined);
  }

  #send<T, R>(
    operation: string,
    node: string,
    budget: Budget,
    run: () => Promise<T>,
    next: Next<T, R> | undefined,
    context: Record<string, unknown> | undefined,
  ): Promise<R> {
    let refused: RedscaleError | undefined;
    let breaker: CircuitBreaker | undefined;
    if (budget.deadline <= performance.now()) {
      refused = new RedisTimeoutError(operation, budget.timeoutMs, context);
      this.#sink.redisError(refused);
    } else {
      breaker = this.#breakers?.ofNode(node);
      if (breaker && !breaker.tryPass()) {
        this.#sink.skipped();
        refused = new RedscaleError(
          'ERR_REDIS',
          `redscale: ${operation} skipped: Redis node ${node} failed and is skipped for ${breaker.retryInMs} ms (circuit open)`,
          { context: { operation, node, ...context } },
        );
      }
    }
    if (refused) {
      if (!next) return Promise.reject(refused);
      try {
        return Promise.resolve(next(undefined, refused));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const flight = new InFlight<T, R>(this.#sink, operation, node, breaker, budget.timeoutMs, context, next);
    let sent: Promise<T>;
    try {
      sent = run();
    } catch (error) {
      sent = Promise.reject(error);
    }
    const settled = new Promise<R>((resolve, reject) => {
      flight.resolve = resolve;
      flight.reject = reject;
    });
    flight.sent = sent;
    fileDeadline(flight, budget.deadline);
    sent.then(
      (value) => flight.answered(value),
      (error: unknown) => flight.failed(toRedisError(operation, error, flight.context())),
    );
    return settled;
  }

  /** Every node's circuit breaker state, by node address (empty without breakers). */
  breakerStates(): Record<string, 'closed' | 'open' | 'half-open'> {
    return this.#breakers?.states() ?? {};
  }

  /** Learns a node's server time from a script's reply (see {@link ServerClock.learn}). */
  learn(node: string, serverMs: number): void {
    this.#clocks.ofNode(node).learn(serverMs, performance.now());
  }

  /**
   * `node`'s time (epoch ms) at local time `at` (`performance.now()`), estimated early: until a
   * reply taught this process the node's clock, the wall clock less a second stands in.
   */
  serverTimeAt(node: string, at: number): number {
    const clock = this.#clocks.ofNode(node);
    return clock.serverTimeAt(at) - (clock.learned ? 0 : 1_000);
  }

  /** `budget`'s deadline on `node`'s clock (epoch ms), for a script to refuse to act past it. */
  serverDeadline(node: string, budget: Budget): number {
    return this.#clocks.ofNode(node).serverTimeAt(budget.deadline);
  }
}

const noop = () => {};

/** A caller's next step after a Redis call: the reply, or (already reported) the error. */
export type Next<T, R> = (value: T | undefined, error: RedscaleError | undefined) => R | Promise<R>;

/**
 * One Redis call in flight through the gate: settles once, with the reply (or what `next` makes
 * of it) or at the deadline, whichever comes first; a failure opens the node's breaker and is
 * reported once. A class, not closures, since every cache operation makes one.
 */
class InFlight<T, R> implements Pending {
  settled = false;
  bucket: Pending['bucket'];
  prev: Pending | undefined;
  next: Pending | undefined;
  resolve: (value: R | Promise<R>) => void = noop;
  reject: (error: unknown) => void = noop;
  sent: Promise<T> | undefined;
  readonly #sink: GateSink;
  readonly #operation: string;
  readonly #node: string;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #timeoutMs: number;
  readonly #context: Record<string, unknown> | undefined;
  readonly #then: Next<T, R> | undefined;

  constructor(
    sink: GateSink,
    operation: string,
    node: string,
    breaker: CircuitBreaker | undefined,
    timeoutMs: number,
    context: Record<string, unknown> | undefined,
    next: Next<T, R> | undefined,
  ) {
    this.#sink = sink;
    this.#operation = operation;
    this.#node = node;
    this.#breaker = breaker;
    this.#timeoutMs = timeoutMs;
    this.#context = context;
    this.#then = next;
  }

  /** What errors carry: the node, and the caller's context. */
  context(): Record<string, unknown> {
    return { node: this.#node, ...this.#context };
  }

  answered(value: T): void {
    if (this.settled) return;
    settleDeadline(this);
    if (this.#breaker?.success()) this.#sink.breaker?.(this.#node, 'closed');
    if (this.#then) this.#continue(value, undefined);
    else this.resolve(value as unknown as R);
  }

  /** The deadline came first: the reply, whenever it comes, is nobody's (and never an unhandled rejection). */
  expire(): void {
    this.sent?.catch(noop);
    this.failed(new RedisTimeoutError(this.#operation, this.#timeoutMs, this.context()));
  }

  failed(error: RedscaleError): void {
    if (this.settled) return;
    settleDeadline(this);
    if (this.#breaker?.failure()) this.#sink.breaker?.(this.#node, 'open');
    this.#sink.redisError(error);
    if (this.#then) this.#continue(undefined, error);
    else this.reject(error);
  }

  #continue(value: T | undefined, error: RedscaleError | undefined): void {
    try {
      this.resolve((this.#then as Next<T, R>)(value, error));
    } catch (thrown) {
      this.reject(thrown);
    }
  }
}
