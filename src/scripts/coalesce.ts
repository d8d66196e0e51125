import { nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { evalScript, isNoScript, shaOf, wasSent } from './eval-script.js';
import type { ScriptName } from './registry.js';

/** Most script calls one pipeline carries; a fuller queue is sent at once. */
const MAX_PIPELINE = 128;

interface Call {
  script: ScriptName;
  keys: readonly string[];
  args: ReadonlyArray<string | number>;
  resolve: (reply: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Script calls of one client that are issued while others are in flight, written to Redis
 * together: one pipeline (one write, one read of the replies) per Redis node instead of a write
 * per call. Each call stays a call of its own (its own EVALSHA, reply and error, in the order it
 * was issued), so nothing about what a script does or guarantees changes: only how the requests
 * travel. On a busy client the writes and the reads are most of a call's CPU cost, on both sides.
 *
 * Like Nagle's algorithm, and the rate limiter's batches, it never delays a lone call: with
 * nothing in flight a call is sent at once; while calls are in flight, calls wait for the end of
 * the event loop's current turn (`setImmediate`) or for the last reply in flight, whichever comes
 * first (so calls keep flowing where `setImmediate` is faked).
 */
class Coalescer {
  readonly #redis: RedisLike;
  readonly #cluster: boolean;
  #pending: Call[] = [];
  #scheduled = false;
  /** Commands (single calls or pipelines) sent and not yet answered. */
  #inFlight = 0;

  constructor(redis: RedisLike) {
    this.#redis = redis;
    this.#cluster = isCluster(redis);
  }

  run(script: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    if (this.#inFlight === 0 && this.#pending.length === 0) return this.#sendOne(script, keys, args);
    return new Promise((resolve, reject) => {
      this.#pending.push({ script, keys, args, resolve, reject });
      if (this.#pending.length >= MAX_PIPELINE) {
        this.#flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  readonly #answered = (): void => {
    this.#inFlight -= 1;
    if (this.#inFlight === 0 && this.#pending.length > 0) this.#flush();
  };

  readonly #flush = (): void => {
    this.#scheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    if (!this.#cluster) {
      this.#send(pending);
      return;
    }
    // A Cluster pipeline goes to one node: one per node the calls' keys live on.
    const byNode = new Map<string, Call[]>();
    for (const call of pending) {
      const node = nodeOf(this.#redis, call.keys[0] ?? '');
      const group = byNode.get(node);
      if (group) group.push(call);
      else byNode.set(node, [call]);
    }
    for (const group of byNode.values()) this.#send(group);
  };

  #sendOne(script: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    this.#inFlight++;
    const reply = evalScript(this.#redis, script, keys, args);
    reply.then(this.#answered, this.#answered);
    return reply;
  }

  #forward(call: Call): void {
    this.#sendOne(call.script, call.keys, call.args).then(call.resolve, call.reject);
  }

  /** Calls bound for one node: alone when there is one, else one pipeline of EVALSHAs. */
  #send(calls: Call[]): void {
    // A script this node has not been sent yet is taught by its first call (EVAL), and the calls
    // keep their order: until every script is known, they go one by one.
    if (calls.length === 1 || calls.some((call) => !wasSent(this.#redis, call.script, call.keys[0]))) {
      for (const call of calls) this.#forward(call);
      return;
    }
    const pipeline = this.#redis.pipeline();
    for (const call of calls) pipeline.evalsha(shaOf(call.script), call.keys.length, ...call.keys, ...call.args);
    this.#inFlight++;
    pipeline.exec().then(
      (results) => {
        this.#answered();
        for (let i = 0; i < calls.length; i++) {
          const call = calls[i] as Call;
          const [error, reply] = results?.[i] ?? [new Error('no reply in the pipeline')];
          if (!error) call.resolve(reply);
          // Not run: a script the server lost, or a slot that moved or is moving (ioredis retries
          // a redirected pipeline only when every command in it was redirected alike). Sent alone,
          // the call follows MOVED/ASK and NOSCRIPT like any other; it never ran, so it runs once.
          else if (isNoScript(error) || isRedirection(error)) this.#forward(call);
          else call.reject(error);
        }
      },
      (error: unknown) => {
        this.#answered();
        // The slot map changed between grouping and sending (a resharding): ioredis refused the
        // pipeline before sending anything, so each call goes alone, to wherever its slot is now.
        if (isSplitPipeline(error)) for (const call of calls) this.#forward(call);
        else for (const call of calls) call.reject(error);
      },
    );
  }
}

const coalescers = new WeakMap<RedisLike, Coalescer>();

/**
 * {@link evalScript}, with the calls a busy client issues in one turn of the event loop written to
 * Redis together (see {@link Coalescer}): the same commands, replies and errors, fewer writes.
 * Keys go in KEYS and share a `{hash tag}`, as for `evalScript`.
 */
export function coalescedEval(
  redis: RedisLike,
  script: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  let coalescer = coalescers.get(redis);
  if (!coalescer) {
    coalescer = new Coalescer(redis);
    coalescers.set(redis, coalescer);
  }
  return coalescer.run(script, keys, args);
}

/** A Cluster reply saying the command ran nowhere and belongs elsewhere (or later): MOVED, ASK, TRYAGAIN. */
function isRedirection(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK|TRYAGAIN) /.test(error.message);
}

/** ioredis refused a Cluster pipeline whose keys its current slot map puts on different nodes (nothing was sent). */
function isSplitPipeline(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('All keys in the pipeline should belong to the same slots');
}
