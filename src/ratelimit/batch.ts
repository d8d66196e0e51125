import { nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { fileDeadline, type Pending, settleDeadline } from '../common/deadline.js';
import { RedisCommandError, RedisTimeoutError } from '../common/errors.js';
import { realNextTick as nextTick } from '../common/real-next-tick.js';
import { evalScript, isNoScript, isRedirection, isSplitPipeline, shaOf, wasSent } from '../scripts/eval-script.js';
import type { Decision } from './algorithms.js';
import { callArgs, type ScriptPlan, splitBatchReply } from './protocol.js';
import type { CallTiming } from './redis-backend.js';

/** Options of the limiter's `batch` option. */
export interface BatchOptions {
  /** Most checks one script call (or one pipeline) carries; a fuller batch is sent at once. */
  maxSize: number;
}

/**
 * One identity's check, waiting for its reply. It is its own deadline entry: at the caller's
 * deadline it rejects with a timeout (a reply arriving later is ignored), so a check costs no
 * promise, timer or closure beyond its own.
 */
class Item implements Pending {
  settled = false;
  bucket: Pending['bucket'];
  prev: Pending | undefined;
  next: Pending | undefined;

  constructor(
    readonly keys: string[],
    readonly op: string,
    readonly timing: CallTiming,
    readonly id: string,
    readonly resolve: (decision: Decision) => void,
    readonly reject: (error: unknown) => void,
  ) {
    fileDeadline(this, timing.expiresAt);
  }

  expire(): void {
    this.fail(
      new RedisTimeoutError('rate-limit check', this.timing.timeoutMs, { id: this.id, node: this.timing.node }),
    );
  }

  fail(error: unknown): void {
    if (this.settled) return;
    settleDeadline(this);
    this.reject(error);
  }
}

/** Turns one identity's reply into its decision (or throws, e.g. when the script ran too late). */
export type Settle = (reply: unknown, timing: CallTiming, id: string) => Decision;

/**
 * Coalesces concurrent checks into as few commands as possible. On a standalone Redis (or
 * Sentinel) the checks of one operation (`consume` cost 1, …) become one script call that
 * decides every identity in turn — each atomically and exactly, since a script runs alone — so
 * Redis parses, dispatches and answers one command instead of many. On a Cluster the keys of
 * different identities live in different slots, so the checks go as one pipeline per node.
 *
 * Like Nagle's algorithm, it never delays a lone check: with nothing of this limiter in flight a
 * check is sent at once (one request at a time costs what it did unbatched). While checks are in
 * flight, a batch goes as soon as it holds a quarter of them (so below 8 in flight a check still
 * goes at once); the rest wait for the end of the event loop's current turn (`setImmediate`: this
 * tick and the I/O callbacks of its poll phase) — or for the last reply in flight, whichever comes
 * first, so checks keep flowing where `setImmediate` is faked.
 *
 * The call carries the earliest deadline of its checks: checks sent together were issued at
 * most one turn apart, and a check is only ever refused for lateness early, never late.
 */
export class Batcher {
  readonly #redis: RedisLike;
  readonly #plan: ScriptPlan;
  readonly #maxSize: number;
  readonly #settle: Settle;
  readonly #now: (() => number) | undefined;
  readonly #cluster: boolean;
  #pending = new Map<string, Item[]>();
  #scheduled = false;
  /** Commands sent and not yet answered. */
  #inFlight = 0;
  /**
   * Checks sent and not yet answered, counting those answered in this turn until it ends: their
   * callers' next checks, made in reaction, still see them (see {@link Batcher.add}).
   */
  #checksInFlight = 0;
  #retiring = 0;
  /**
   * Something was queued when the last reply turn ended: should it still be queued when the next
   * one ends, it goes then. Where `setImmediate` is faked, a steady stream of replies keeps one in
   * flight, so "the last reply" never comes for a queue below its batch size (another operation's).
   */
  #waited = false;

  constructor(redis: RedisLike, plan: ScriptPlan, options: BatchOptions, settle: Settle, now?: () => number) {
    this.#redis = redis;
    this.#plan = plan;
    this.#maxSize = options.maxSize;
    this.#settle = settle;
    this.#now = now;
    this.#cluster = isCluster(redis);
  }

  /** Queues one identity's check; it is sent with the others of this tick. */
  add(keys: string[], op: string, timing: CallTiming, id: string): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      const item = new Item(keys, op, timing, id, resolve, reject);
      if (this.#inFlight === 0 && this.#pending.size === 0) {
        this.#sendOne(item);
        return;
      }
      let items = this.#pending.get(op);
      if (!items) {
        items = [];
        this.#pending.set(op, items);
      }
      items.push(item);
      // A batch goes as soon as it holds a quarter of the checks in flight (up to maxSize): with
      // at least four batches in flight, Redis runs one while the client reads another. One
      // batch of everything would make them take turns, each idle while the other works (at 8 in
      // flight that cost a quarter of the throughput); a lone check still goes at once.
      if (items.length >= Math.min(this.#maxSize, Math.max(1, this.#checksInFlight >> 2))) {
        this.#pending.delete(op);
        this.#send(items);
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  /**
   * A command was answered (or failed). When it was the last one in flight, whatever is queued goes
   * now: it has nothing to wait for. This also keeps checks flowing where `setImmediate` never
   * runs — under fake timers (Jest's, Vitest's, node:test's, sinon's), replies still arrive.
   */
  #answered(checks: number): void {
    this.#inFlight -= 1;
    this.#retiring += checks;
    if (this.#retiring === checks) nextTick(this.#retire);
    if (this.#inFlight === 0 && this.#pending.size > 0) this.#flush();
  }

  /** The turn that answered them has ended (its promise reactions ran first). */
  readonly #retire = (): void => {
    this.#checksInFlight -= this.#retiring;
    this.#retiring = 0;
    if (this.#pending.size === 0) this.#waited = false;
    else if (this.#waited) this.#flush();
    else this.#waited = true;
  };

  #sent(checks: number): void {
    this.#inFlight += 1;
    this.#checksInFlight += checks;
  }

  readonly #flush = (): void => {
    this.#scheduled = false;
    this.#waited = false;
    const pending = this.#pending;
    this.#pending = new Map();
    for (const items of pending.values()) this.#send(items);
  };

  #send(queued: Item[]): void {
    // A check that timed out while queued stays unsent: its caller has its answer, and a check
    // given up on must have no later effect (its deadline may be reckoned on a skewed host clock).
    const items = queued.some(isSettled) ? queued.filter((item) => !item.settled) : queued;
    if (items.length === 0) return;
    if (items.length === 1) {
      this.#sendOne(items[0] as Item);
    } else if (!this.#cluster) {
      this.#sendTogether(items);
    } else {
      const byNode = new Map<string, Item[]>();
      for (const item of items) {
        const node = nodeOf(this.#redis, item.keys[0] as string);
        const group = byNode.get(node);
        if (group) group.push(item);
        else byNode.set(node, [item]);
      }
      for (const group of byNode.values()) {
        if (group.length === 1) this.#sendOne(group[0] as Item);
        else this.#pipeline(group);
      }
    }
  }

  #sendOne(item: Item): void {
    // Timed out before it went (queued, or back from a redirected pipeline): see #send.
    if (item.settled) return;
    const args = callArgs(this.#plan, item.timing.deadline, item.op, this.#now?.());
    this.#sent(1);
    evalScript(this.#redis, this.#plan.script, item.keys, args).then(
      (reply) => {
        this.#answered(1);
        this.#deliver(item, reply);
      },
      (error: unknown) => {
        this.#answered(1);
        item.fail(error);
      },
    );
  }

  /** One script call deciding every identity (standalone). */
  #sendTogether(items: Item[]): void {
    let deadline = Number.POSITIVE_INFINITY;
    const keys: string[] = [];
    for (const item of items) {
      if (item.timing.deadline < deadline) deadline = item.timing.deadline;
      for (const key of item.keys) keys.push(key);
    }
    const args = callArgs(this.#plan, deadline, (items[0] as Item).op, this.#now?.());
    this.#sent(items.length);
    evalScript(this.#redis, this.#plan.script, keys, args).then(
      (reply) => {
        this.#answered(items.length);
        if (typeof reply === 'number' && reply < 0) {
          // Too late: the whole call did nothing.
          for (const item of items) this.#deliver(item, reply);
          return;
        }
        const replies = splitBatchReply(reply, this.#plan, items.length);
        if (!replies) {
          const error = new RedisCommandError('rate-limit check', new Error('unexpected reply to a batch of checks'));
          for (const item of items) item.fail(error);
          return;
        }
        for (let i = 0; i < items.length; i++) this.#deliver(items[i] as Item, replies[i]);
      },
      (error: unknown) => {
        this.#answered(items.length);
        for (const item of items) item.fail(error);
      },
    );
  }

  /** One pipeline of script calls to one Cluster node. */
  #pipeline(items: Item[]): void {
    if (!wasSent(this.#redis, this.#plan.script, (items[0] as Item).keys[0])) {
      // The node has not been sent the script yet: the first call teaches it (EVAL).
      for (const item of items) this.#sendOne(item);
      return;
    }
    const pipeline = this.#redis.pipeline();
    const sha = shaOf(this.#plan.script);
    const now = this.#now?.();
    for (const item of items) {
      pipeline.evalsha(
        sha,
        item.keys.length,
        ...item.keys,
        ...callArgs(this.#plan, item.timing.deadline, item.op, now),
      );
    }
    this.#sent(items.length);
    pipeline.exec().then(
      (results) => {
        this.#answered(items.length);
        items.forEach((item, i) => {
          const [error, reply] = results?.[i] ?? [new Error('no reply in the pipeline')];
          if (!error) this.#deliver(item, reply);
          // Not run: a missing script, or a slot that moved or is moving (ioredis retries a
          // redirected pipeline only when every command in it was redirected alike). Sent alone,
          // the call follows MOVED/ASK like any other; it cannot count twice, it never ran.
          else if (isNoScript(error) || isRedirection(error)) this.#sendOne(item);
          else item.fail(error);
        });
      },
      (error: unknown) => {
        this.#answered(items.length);
        // The slot map changed between grouping and sending (a resharding): ioredis refused the
        // pipeline before sending anything, so each call goes alone, to wherever its slot is now.
        if (isSplitPipeline(error)) for (const item of items) this.#sendOne(item);
        else for (const item of items) item.fail(error);
      },
    );
  }

  #deliver(item: Item, reply: unknown): void {
    if (reply instanceof Error) {
      // This identity's decision failed in the script (see splitBatchReply); the others stand.
      item.fail(reply);
      return;
    }
    if (item.settled) {
      // A reply after the caller's deadline: the check has already failed with a timeout. The
      // reply still carries the server's time; settling it teaches the node's clock (until then,
      // deadlines are reckoned on the host's clock, maybe skewed). The decision is dropped.
      try {
        this.#settle(reply, item.timing, item.id);
      } catch {}
      return;
    }
    settleDeadline(item);
    try {
      item.resolve(this.#settle(reply, item.timing, item.id));
    } catch (error) {
      item.reject(error);
    }
  }
}

function isSettled(item: Item): boolean {
  return item.settled;
}
