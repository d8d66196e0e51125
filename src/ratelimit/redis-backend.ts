import { performance } from 'node:perf_hooks';
import { escapeGlob } from '../cache/patterns.js';
import { multiKeyGroups, scanEveryMaster } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import { RedisTimeoutError } from '../common/errors.js';
import { hashTag } from '../common/keys.js';
import type { ServerClock } from '../common/server-clock.js';
import { evalScript } from '../scripts/eval-script.js';
import type { Decision, Mode } from './algorithms.js';
import { Batcher, type BatchOptions } from './batch.js';
import type { BackendConfig } from './memory-backend.js';
import { callArgs, decodeReply, operationArg, planFor, type ScriptPlan } from './protocol.js';

/** What the Redis backend is built from. */
export interface RedisBackendConfig extends BackendConfig {
  /** The limiter's `timeout`, for error messages. */
  timeoutMs: number;
  /** Coalescing of concurrent checks; `false` sends each on its own. */
  batch: false | BatchOptions;
}

/** Where a call's reply teaches the limiter the server's clock, and by when it must have run. */
export interface CallTiming {
  /** The caller's deadline in the server's time (epoch ms): a script that runs later does nothing. */
  deadline: number;
  clock: ServerClock;
  /** The same deadline on this process's clock (`performance.now()`): the call rejects with a timeout then. */
  expiresAt: number;
  /** The limiter's `timeout`, ms, and the node's name: what a timeout error says. */
  timeoutMs: number;
  node: string;
}

/**
 * Counters in Redis: one script call per decision (or per batch of concurrent decisions), using
 * the server's clock, and never acting after its caller gave up.
 */
export class RedisBackend {
  readonly #redis: RedisLike;
  readonly #config: RedisBackendConfig;
  readonly #plan: ScriptPlan;
  readonly #batcher: Batcher | undefined;

  constructor(redis: RedisLike, config: RedisBackendConfig) {
    this.#redis = redis;
    this.#config = config;
    this.#plan = planFor(config.specs, config.blockForMs, config.blockMode === 'exact');
    this.#batcher = config.batch
      ? new Batcher(
          redis,
          this.#plan,
          config.batch,
          (reply, timing, id) => this.#settle(decodeReply(reply, this.#plan), timing, id),
          config.clock,
        )
      : undefined;
  }

  /** The keys one check sends: the block key when blocking, then one state key per limit. */
  keysOf(id: string): string[] {
    const root = `${this.#config.base}${hashTag(id)}:`;
    const suffixes = this.#config.suffixes;
    if (this.#plan.single) return [root + suffixes[0]];
    const keys = this.#plan.blockKey ? [`${root}block`] : [];
    for (const suffix of suffixes) keys.push(root + suffix);
    return keys;
  }

  /**
   * Decides one call. Rejects when Redis fails, and with a {@link RedisTimeoutError} at
   * `timing.expiresAt` or when the script ran too late.
   */
  decide(id: string, mode: Mode, cost: number, timing: CallTiming): Promise<Decision> {
    const keys = this.keysOf(id);
    const op = operationArg(mode, cost);
    if (this.#batcher) return this.#batcher.add(keys, op, timing, id);
    const now = this.#config.clock?.();
    // Settled inside the deadline, so a late reply still teaches the node's clock (its decision is dropped).
    const decided = evalScript(
      this.#redis,
      this.#plan.script,
      keys,
      callArgs(this.#plan, timing.deadline, op, now),
    ).then((reply) => this.#settle(decodeReply(reply, this.#plan), timing, id));
    return untilDeadline(decided, timing.expiresAt, timing.timeoutMs, 'rate-limit check', { id, node: timing.node });
  }

  /** Gives `cost` back to every limit; nothing when it ran after its deadline (then it rejects). */
  async refund(id: string, cost: number, timing: CallTiming): Promise<void> {
    const root = `${this.#config.base}${hashTag(id)}:`;
    const keys = this.#config.suffixes.map((suffix) => root + suffix);
    const reply = await evalScript(this.#redis, 'ratelimitRefund', keys, [
      timing.deadline,
      cost,
      this.#config.clock?.() ?? '',
      ...this.#config.specs.map((spec) => spec.limit),
    ]);
    this.#checkTiming(reply, timing, 'rate-limit refund', id);
  }

  /** Forgets the identity (counts and block); nothing when it ran after its deadline (then it rejects). */
  async reset(id: string, timing: CallTiming): Promise<void> {
    const root = `${this.#config.base}${hashTag(id)}:`;
    const keys = [`${root}block`, ...this.#config.suffixes.map((suffix) => root + suffix)];
    const reply = await evalScript(this.#redis, 'ratelimitReset', keys, [timing.deadline]);
    this.#checkTiming(reply, timing, 'rate-limit reset', id);
  }

  /** Forgets every identity under the limiter's namespace. */
  async resetAll(): Promise<void> {
    // SCAN on every master (never KEYS); the keys of one identity share a slot, and UNLINK takes
    // one slot's keys at a time on a Cluster.
    for await (const keys of scanEveryMaster(this.#redis, { match: `${escapeGlob(this.#config.base)}*` })) {
      for (const group of multiKeyGroups(this.#redis, keys)) await this.#redis.unlink(...group);
    }
  }

  /** Whether concurrent checks are coalesced into one script call (standalone) or one pipeline per node (Cluster). */
  get batching(): boolean {
    return this.#batcher !== undefined;
  }

  /** Learns the server's clock from a reply and turns a late one into a timeout. */
  #settle(decoded: ReturnType<typeof decodeReply>, timing: CallTiming, id: string): Decision {
    if ('late' in decoded) {
      timing.clock.learn(decoded.serverTime);
      throw this.#lateError('rate-limit check', id);
    }
    // A test clock is not the server's: learn only from real server time.
    if (!this.#config.clock) timing.clock.learn(decoded.now, performance.now());
    return decoded;
  }

  #checkTiming(reply: unknown, timing: CallTiming, operation: string, id: string): void {
    if (typeof reply === 'number' && reply < 0) {
      timing.clock.learn(-reply);
      throw this.#lateError(operation, id);
    }
  }

  #lateError(operation: string, id: string): RedisTimeoutError {
    // It ran, but after its caller's deadline, so it did nothing: for the caller, a timeout.
    return new RedisTimeoutError(operation, this.#config.timeoutMs, { id, ranAfterDeadline: true });
  }
}
