import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { parseCallOptions, parseOptions } from '../common/options.js';
import { ServerClocks } from '../common/server-clock.js';
import { type LockOperationMessage, traced, tracing } from '../observability/channels.js';
import { type LockLostError, LockNotReplicatedError, LockTimeoutError } from './errors.js';
import { LockHandle, type LockHandleSettings, MultiLockHandle, type MultiLockHandleSettings } from './handle.js';
import { LockSet, type LockSetTarget } from './lock-set.js';
import {
  type AcquireOptions,
  acquireOptionsShape,
  checkFunction,
  checkResource,
  checkResources,
  type LockContext,
  type LockOptions,
  leaseOptionsShape,
  type MultiLockContext,
} from './options.js';
import { acknowledgedReplicas } from './replication.js';
import { LockReporter } from './reporter.js';
import { runWhileHeld } from './run-held.js';
import type { LockEvents, LockStats } from './stats.js';
import { acquireWithin } from './waiting.js';

const optionsSchema = z.strictObject(leaseOptionsShape);

/** What a successful acquisition attempt yields. */
interface Taken {
  token: string;
  sentAt: number;
  fences: ReadonlyMap<string, number>;
}
const acquireSchema = z.strictObject(acquireOptionsShape);

type Resolved = z.output<typeof optionsSchema>;

/**
 * A distributed mutex on Redis with fencing tokens. Acquiring is one round trip (the lock and its
 * fencing token in one script); releasing and extending are one each and only act while this
 * holder's token is still the lock's. Waiting retries with jittered exponential backoff, never
 * longer than the current holder's remaining ttl.
 *
 * Every call runs under one deadline. An acquire carries it to Redis in the server's time and is
 * refused there if it runs later (a replayed or stalled command), and after any failed attempt
 * the lock sends a token-checked release, so an acquire the caller gave up on never leaves the
 * resource locked: retrying at once succeeds.
 *
 * A Redis lock is a lease, not a guarantee: a long GC pause, a stalled process or a failover
 * that loses the key (Redis replicates asynchronously; `replicas` makes acquire wait for replicas)
 * can let two holders overlap. Stop when `signal` aborts, and make the protected resource check
 * the fencing token.
 *
 * @example
 * ```ts
 * const lock = new Lock({ redis })
 * await lock.withLock('invoice:7', async ({ signal, fence }) => {
 *   await chargeInvoice(7, { fence, signal })
 * }, { ttl: '10s' })
 *
 * await using held = await lock.acquire('report')   // released when the scope exits
 * ```
 */
export class Lock extends EventEmitter<LockEvents> {
  readonly #options: Resolved;
  readonly #clocks: ServerClocks;
  readonly #report: LockReporter;
  /** Where every lock set of this lock lives, built once rather than per call. */
  readonly #target: LockSetTarget;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: LockOptions) {
    super();
    this.#options = parseOptions(optionsSchema, options, 'Lock');
    this.#clocks = new ServerClocks(this.#options.redis);
    this.#report = new LockReporter(this, this.#options);
    const { redis, prefix, timeout } = this.#options;
    this.#target = { redis, clocks: this.#clocks, prefix, timeoutMs: timeout, onError: this.#report.redisError };
  }

  /** Counters since the lock was created (one source with the events). */
  stats(): LockStats {
    return { ...this.#report.stats };
  }

  /**
   * Acquires `resource`, waiting up to `wait` while someone else holds it.
   * @throws LockTimeoutError when it stayed held for all of `wait`; a RedscaleError with code
   * ERR_TIMEOUT or ERR_REDIS when Redis fails (never reported as "busy"); AbortedError on abort;
   * LockNotReplicatedError (with `replicas`) when too few replicas acknowledged the grant.
   */
  async acquire(resource: string, options: AcquireOptions = {}): Promise<LockHandle> {
    const where = 'Lock.acquire()';
    checkResource(resource, where);
    return this.#single(resource, parseCallOptions(acquireSchema, options, where));
  }

  /** Acquires `resource` if it is free right now; resolves `null` if someone holds it. */
  async tryAcquire(resource: string, options: Omit<AcquireOptions, 'wait'> = {}): Promise<LockHandle | null> {
    const where = 'Lock.tryAcquire()';
    checkResource(resource, where);
    return nullWhenBusy(this.#single(resource, { ...parseCallOptions(acquireSchema, options, where), wait: 0 }));
  }

  /**
   * Runs `fn` while holding `resource`: acquires (waiting up to `wait`), extends automatically
   * while `fn` runs, and releases when it settles. If the lock is lost meanwhile, `signal`
   * aborts, and `withLock` rejects with a LockLostError once `fn` settles — even if `fn`
   * succeeded, since its work may have overlapped with another holder's.
   */
  async withLock<T>(
    resource: string,
    fn: (context: LockContext) => Promise<T> | T,
    options: AcquireOptions = {},
  ): Promise<T> {
    checkFunction(fn, 'Lock.withLock()');
    const handle = await this.acquire(resource, { ...options, autoExtend: options.autoExtend ?? true });
    const context: LockContext = {
      get signal() {
        return handle.signal;
      },
      get fence() {
        return handle.fence;
      },
      handle,
    };
    return runWhileHeld(handle, resource, context, fn, this.#report.redisError);
  }

  /**
   * Acquires every resource in `resources`, all or none, waiting up to `wait` while any is held.
   * Resources that share a Redis hash tag (`{order:7}:items`, `{order:7}:payment`) — and all
   * resources on a standalone Redis — are taken in one script. On a Cluster, resources in
   * different slots are taken slot by slot in ascending slot order; when one is held, those
   * already taken are released before waiting, so no caller holds a part while waiting for the rest.
   * @throws as {@link acquire}.
   */
  async acquireAll(resources: readonly string[], options: AcquireOptions = {}): Promise<MultiLockHandle> {
    const where = 'Lock.acquireAll()';
    const list = checkResources(resources, where);
    return this.#multi(list, parseCallOptions(acquireSchema, options, where));
  }

  /** {@link acquireAll} if every resource is free right now; resolves `null` if any is held. */
  async tryAcquireAll(
    resources: readonly string[],
    options: Omit<AcquireOptions, 'wait'> = {},
  ): Promise<MultiLockHandle | null> {
    const where = 'Lock.tryAcquireAll()';
    const list = checkResources(resources, where);
    return nullWhenBusy(this.#multi(list, { ...parseCallOptions(acquireSchema, options, where), wait: 0 }));
  }

  /** {@link withLock} for several resources at once, acquired as by {@link acquireAll}. */
  async withLocks<T>(
    resources: readonly string[],
    fn: (context: MultiLockContext) => Promise<T> | T,
    options: AcquireOptions = {},
  ): Promise<T> {
    checkFunction(fn, 'Lock.withLocks()');
    const handle = await this.acquireAll(resources, { ...options, autoExtend: options.autoExtend ?? true });
    const context: MultiLockContext = {
      get signal() {
        return handle.signal;
      },
      get fences() {
        return handle.fences;
      },
      handle,
    };
    return runWhileHeld(handle, handle.resources.join(', '), context, fn, this.#report.redisError);
  }

  #single(resource: string, call: z.output<typeof acquireSchema>): Promise<LockHandle> {
    const channel = tracing.lockAcquire;
    if (!traced(channel)) return this.#takeOne(resource, call, undefined);
    const message = this.#message('acquire', [resource]);
    return channel.tracePromise(this.#takeOne, message, this, resource, call, message);
  }

  #multi(resources: string[], call: z.output<typeof acquireSchema>): Promise<MultiLockHandle> {
    const channel = tracing.lockAcquire;
    if (!traced(channel)) return this.#takeAll(resources, call, undefined);
    const message = this.#message('acquire', resources);
    return channel.tracePromise(this.#takeAll, message, this, resources, call, message);
  }

  async #takeOne(
    resource: string,
    call: z.output<typeof acquireSchema>,
    message: LockOperationMessage | undefined,
  ): Promise<LockHandle> {
    return new LockHandle(await this.#take([resource], call, message));
  }

  async #takeAll(
    resources: string[],
    call: z.output<typeof acquireSchema>,
    message: LockOperationMessage | undefined,
  ): Promise<MultiLockHandle> {
    return new MultiLockHandle(await this.#take(resources, call, message));
  }

  #message(operation: LockOperationMessage['operation'], resources: readonly string[]): LockOperationMessage {
    return { prefix: this.#options.prefix, operation, resources };
  }

  async #take(
    resources: string[],
    call: z.output<typeof acquireSchema>,
    message: LockOperationMessage | undefined,
  ): Promise<LockHandleSettings & MultiLockHandleSettings> {
    const { timeout, retryDelay } = this.#options;
    const ttl = call.ttl ?? this.#options.ttl;
    const wait = call.wait ?? this.#options.wait;
    const set = new LockSet(this.#target, resources);
    const started = performance.now();
    // One deadline for the whole call: every attempt starts within `wait` and gets `timeout`.
    const callDeadline = started + wait + timeout;
    let attempts = 0;
    let taken: Taken;
    try {
      taken = await acquireWithin(
        { name: set.name, operation: 'lock acquire', waitMs: wait, retryDelay, signal: call.signal },
        async () => {
          attempts++;
          // A fresh token per attempt: whatever an earlier attempt left is released by its own.
          const token = randomUUID();
          const sentAt = performance.now();
          const result = await set.acquire(token, ttl, Math.min(sentAt + timeout, callDeadline));
          if (!('acquired' in result) && attempts === 1) this.#report.contended(set.resources);
          return 'acquired' in result ? { acquired: { token, sentAt, fences: result.acquired } } : result;
        },
      );
    } catch (error) {
      this.#report.acquireFailed(set.resources, error, performance.now() - started, message, attempts);
      throw error;
    }
    const { token, sentAt, fences } = taken;
    if (this.#options.replicas > 0) {
      try {
        await this.#confirmReplicated(set, token);
      } catch (error) {
        // A grant too few replicas have was given back: it counts as a failed acquisition.
        this.#report.acquireFailed(set.resources, error, performance.now() - started, message, attempts);
        throw error;
      }
    }
    const waitedMs = performance.now() - started;
    this.#report.acquired(set.resources, waitedMs, attempts, fences, message);
    // What either handle is made of, every field spelt out: spreading a settings object into
    // the handle cost more than the rest of the call.
    const settings: LockHandleSettings & MultiLockHandleSettings = {
      name: set.name,
      ttlMs: ttl,
      timeoutMs: timeout,
      autoExtend: call.autoExtend ?? false,
      sentAt,
      onError: this.#report.redisError,
      onLost: (error: LockLostError) => this.#report.lost(set.resources, error),
      operations: {
        extend: (ttlMs: number, deadline: number) => this.#extend(set, token, ttlMs, deadline),
        release: (deadline: number) => this.#release(set, token, deadline),
      },
      token,
      resource: set.resources[0] ?? '',
      fence: fences.get(set.resources[0] ?? '') ?? 0,
      resources: set.resources,
      fences,
    };
    return settings;
  }

  /**
   * With `replicas`, waits until enough replicas have the grant; when they do not, gives the grant
   * back and rejects: the caller must not trust a lock a failover could lose.
   */
  async #confirmReplicated(set: LockSet, token: string): Promise<void> {
    const { redis, replicas, replicationTimeout, timeout } = this.#options;
    if (replicas === 0) return;
    const context = { resource: set.name };
    let acknowledged: number;
    try {
      acknowledged = await acknowledgedReplicas(
        redis,
        set.firstKeys,
        { replicas, timeoutMs: replicationTimeout },
        performance.now() + replicationTimeout + timeout,
        context,
      );
    } catch (error) {
      set.undo(token);
      throw error;
    }
    if (acknowledged < replicas) {
      set.undo(token);
      throw new LockNotReplicatedError(set.name, replicas, acknowledged, replicationTimeout);
    }
  }

  #extend(set: LockSet, token: string, ttlMs: number, deadline: number): Promise<boolean> {
    const channel = tracing.lockExtend;
    if (!traced(channel)) return this.#extendNow(set, token, ttlMs, deadline);
    return channel.tracePromise(
      this.#extendNow,
      this.#message('extend', set.resources),
      this,
      set,
      token,
      ttlMs,
      deadline,
    );
  }

  async #extendNow(set: LockSet, token: string, ttlMs: number, deadline: number): Promise<boolean> {
    const extended = await set.extend(token, ttlMs, deadline);
    if (extended) this.#report.extended(set.resources, ttlMs);
    return extended;
  }

  #release(set: LockSet, token: string, deadline: number): Promise<boolean> {
    const channel = tracing.lockRelease;
    if (!traced(channel)) return this.#releaseNow(set, token, deadline);
    return channel.tracePromise(this.#releaseNow, this.#message('release', set.resources), this, set, token, deadline);
  }

  async #releaseNow(set: LockSet, token: string, deadline: number): Promise<boolean> {
    const held = await set.release(token, deadline);
    this.#report.released(set.resources, held);
    return held;
  }
}

async function nullWhenBusy<T>(acquiring: Promise<T>): Promise<T | null> {
  try {
    return await acquiring;
  } catch (error) {
    if (error instanceof LockTimeoutError) return null;
    throw error;
  }
}
