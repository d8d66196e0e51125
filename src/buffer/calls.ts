import { performance } from 'node:perf_hooks';
import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import { RedisCommandError, RedisTimeoutError } from '../common/errors.js';
import { ServerClocks } from '../common/server-clock.js';
import { runScript, type ScriptName } from '../scripts/registry.js';

/** A script reply of the `{ status, server ms, … }` shape, checked. */
export interface StampedReply {
  /** 1 done, 0 refused (the deadline had passed), -1 refused (full). */
  status: number;
  /** The rest of the reply, after status and time. */
  rest: unknown[];
}

/**
 * Runs a write buffer's scripts under one deadline per call. Scripts that change state receive
 * that deadline in the server's own time (learned per node from the times they return) and do
 * nothing if they run after it: ioredis replays a command queued or unanswered across a
 * reconnection, and "a call redscale gave up on has no later effect".
 */
export class ScriptCaller {
  readonly #redis: RedisLike;
  readonly #timeoutMs: number;
  readonly #clocks: ServerClocks;

  constructor(redis: RedisLike, timeoutMs: number) {
    this.#redis = redis;
    this.#timeoutMs = timeoutMs;
    this.#clocks = new ServerClocks(redis);
  }

  /** The timeout of one call, ms. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** A deadline (`performance.now()` ms) one timeout from now. */
  deadline(): number {
    return performance.now() + this.#timeoutMs;
  }

  /** Runs a script under `deadline`, without the status convention (e.g. ack, hold, prune). */
  run(
    script: ScriptName,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
    deadline: number,
    operation: string,
    context: Record<string, unknown>,
  ): Promise<unknown> {
    return untilDeadline(runScript(this.#redis, script, keys, args), deadline, this.#timeoutMs, operation, context);
  }

  /**
   * Runs a deadline-carrying script and checks its `{ status, server ms, … }` reply: learns the
   * server's clock from it, and turns "the deadline had passed" into a {@link RedisTimeoutError}.
   * `args` receives the deadline in server time. Before the first sample the wall clock stands in
   * for the server's; if the script finds that deadline already past while the caller still has
   * time, the call is sent once more with the deadline the learned clock gives.
   */
  async stamped(
    script: ScriptName,
    keys: readonly string[],
    args: (serverDeadline: number) => ReadonlyArray<string | number>,
    deadline: number,
    operation: string,
    context: Record<string, unknown>,
  ): Promise<StampedReply> {
    const key = keys[0] as string;
    const clock = this.#clocks.of(key);
    for (let guessed = !clock.learned; ; guessed = false) {
      const reply = await this.run(script, keys, args(clock.serverTimeAt(deadline)), deadline, operation, context);
      if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
        throw new RedisCommandError(operation, new Error('unexpected reply from the buffer script'), context);
      }
      clock.learn(reply[1]);
      if (reply[0] !== 0) return { status: reply[0], rest: reply.slice(2) };
      if (!guessed || performance.now() >= deadline) {
        throw new RedisTimeoutError(operation, this.#timeoutMs, { ...context, ranLate: true });
      }
    }
  }
}
