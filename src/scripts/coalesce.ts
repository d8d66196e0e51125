import { nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { RedisCommandError } from '../common/errors.js';
import { realNextTick as nextTick } from '../common/real-next-tick.js';
import { evalScript, isNoScript, isRedirection, isSplitPipeline, shaOf, wasSent } from './eval-script.js';
import type { ScriptName } from './registry.js';

/** Most script calls one flush carries; a fuller queue is sent at once. */
const MAX_CALLS = 16;

/**
 * Scripts that also run several calls in one run (see their headers): ARGV is each call's key
 * count followed by its own arguments, KEYS all their keys in the same order, and the reply the
 * list of the calls' replies (an error in the place of a call that failed). The first argument of
 * each call is its token.
 */
const BATCHED: ReadonlySet<ScriptName> = new Set<ScriptName>([
  'lockAcquire',
  'lockRelease',
  'lockSemaphoreAcquire',
  'lockSemaphoreRelease',
]);

interface Call {
  script: ScriptName;
  keys: readonly string[];
  args: ReadonlyArray<string | number>;
  resolve: (reply: unknown) => void;
  reject: (error: unknown) => void;
}

/** One command sent: a call alone, or several calls of one script in one run. */
interface Entry {
  script: ScriptName;
  keys: readonly string[];
  args: ReadonlyArray<string | number>;
  calls: Call[];
  batched: boolean;
}

/**
 * Script calls of one client that are issued while others are in flight are sent together: on a
 * standalone Redis, calls of a script that runs several calls at once ({@link BATCHED}) go as one
 * script run, and the rest with them in one pipeline; on a Cluster (where one script's keys must
 * share a slot) as one pipeline per node. Every call still gets its own reply or error, exactly as
 * if it had been sent alone: a batched run is the calls run one after the other, atomically, each
 * judged by its own deadline; what changes is how many requests travel and run. On a busy client
 * the per-request work (writes, reads, ioredis' command objects, the script's invocation in
 * Redis) is most of a lock call's CPU cost, on both sides.
 *
 * Like Nagle's algorithm it never delays a lone call: with nothing in flight, and no reply being
 * handled in this turn, a call is sent at once. Otherwise calls wait for the end of the current
 * turn's callbacks (`process.nextTick`, which runs once every promise reaction of the turn has run:
 * all the calls a burst of replies sets off go together, in one write).
 */
class Coalescer {
  readonly #redis: RedisLike;
  readonly #cluster: boolean;
  /**
   * ioredis auto-pipelining holds a lone command until `setImmediate` but writes an explicit
   * pipeline at `exec()`: a pipeline would overtake a call sent alone before it. Such a client
   * gets every command alone (it pipelines them itself, in order).
   */
  readonly #autoPipelined: boolean;
  #pending: Call[] = [];
  #scheduled = false;
  /** Commands (single calls, runs or pipelines) sent and not yet answered. */
  #inFlight = 0;
  /** A reply arrived in this turn: the calls its reactions make are about to come, together. */
  #replyTurn = false;

  constructor(redis: RedisLike) {
    this.#redis = redis;
    this.#cluster = isCluster(redis);
    this.#autoPipelined = redis.options.enableAutoPipelining === true;
  }

  run(script: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    if (this.#inFlight === 0 && this.#pending.length === 0 && !this.#replyTurn) {
      return this.#sendOne(script, keys, args);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ script, keys, args, resolve, reject });
      if (this.#pending.length >= MAX_CALLS) {
        this.#flush();
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        nextTick(this.#flush);
      }
    });
  }

  readonly #answered = (): void => {
    this.#inFlight -= 1;
    if (!this.#replyTurn) {
      this.#replyTurn = true;
      nextTick(this.#endTurn);
    }
  };

  readonly #endTurn = (): void => {
    this.#replyTurn = false;
  };

  readonly #flush = (): void => {
    this.#scheduled = false;
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    if (!this.#cluster) {
      this.#send(pending, batches(pending));
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
    for (const group of byNode.values()) this.#send(group, group.map(alone));
  };

  #sendOne(script: ScriptName, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    this.#inFlight++;
    const reply = evalScript(this.#redis, script, keys, args);
    reply.then(this.#answered, this.#answered);
    return reply;
  }

  #forward(entry: Entry): void {
    this.#sendOne(entry.script, entry.keys, entry.args).then(
      (reply) => deliver(entry, reply),
      (error: unknown) => {
        for (const call of entry.calls) call.reject(error);
      },
    );
  }

  /** The commands for one node's calls: one alone, else one pipeline. */
  #send(calls: Call[], entries: Entry[]): void {
    // A script this node has not been sent yet is taught by its first call (EVAL), and the calls
    // keep their order: until every script is known, they go one by one.
    if (calls.some((call) => !wasSent(this.#redis, call.script, call.keys[0]))) {
      for (const call of calls) this.#forward(alone(call));
      return;
    }
    if (entries.length === 1 || this.#autoPipelined) {
      for (const entry of entries) this.#forward(entry);
      return;
    }
    const pipeline = this.#redis.pipeline();
    for (const entry of entries) pipeline.evalsha(shaOf(entry.script), entry.keys.length, ...entry.keys, ...entry.args);
    this.#inFlight++;
    pipeline.exec().then(
      (results) => {
        this.#answered();
        for (let i = 0; i < entries.length; i++) {
          const entry = entries[i] as Entry;
          const [error, reply] = results?.[i] ?? [new Error('no reply in the pipeline')];
          if (!error) deliver(entry, reply);
          // Not run: a script the server lost, or a slot that moved or is moving (ioredis retries
          // a redirected pipeline only when every command in it was redirected alike). Sent alone,
          // the command follows MOVED/ASK and NOSCRIPT like any other; it never ran, so it runs once.
          else if (isNoScript(error) || isRedirection(error)) this.#forward(entry);
          else for (const call of entry.calls) call.reject(error);
        }
      },
      (error: unknown) => {
        this.#answered();
        // The slot map changed between grouping and sending (a resharding): ioredis refused the
        // pipeline before sending anything, so each command goes alone, to wherever its slot is now.
        if (isSplitPipeline(error)) for (const entry of entries) this.#forward(entry);
        else for (const entry of entries) for (const call of entry.calls) call.reject(error);
      },
    );
  }
}

/** A call sent on its own. */
function alone(call: Call): Entry {
  return { script: call.script, keys: call.keys, args: call.args, calls: [call], batched: false };
}

/**
 * The commands for calls to one standalone server: the calls of each {@link BATCHED} script in one
 * run, where their first call was, the others alone, in order. Grouping by script reorders calls
 * of different scripts, which is only safe when they share nothing: two of one token (an
 * acquisition and its undo) or of one key (a release, then another caller's acquisition of the
 * same resource, which sent alone in order would find it free) send every call alone, in order.
 */
function batches(calls: Call[]): Entry[] {
  const byScript = new Map<ScriptName, Call[]>();
  const scriptOf = new Map<unknown, ScriptName>();
  for (const call of calls) {
    const group = byScript.get(call.script);
    if (group) group.push(call);
    else byScript.set(call.script, [call]);
    if (!claim(scriptOf, call.args[0], call.script)) return calls.map(alone);
    for (const key of call.keys) if (!claim(scriptOf, key, call.script)) return calls.map(alone);
  }
  const entries: Entry[] = [];
  for (const [script, group] of byScript) {
    if (group.length === 1 || !BATCHED.has(script)) {
      for (const call of group) entries.push(alone(call));
      continue;
    }
    const keys: string[] = [];
    const args: Array<string | number> = [];
    for (const call of group) {
      for (const key of call.keys) keys.push(key);
      args.push(call.keys.length);
      for (const arg of call.args) args.push(arg);
    }
    entries.push({ script, keys, args, calls: group, batched: true });
  }
  return entries;
}

/** Files `script` as the user of `item` (a token or a key); false when another script already uses it. */
function claim(scriptOf: Map<unknown, ScriptName>, item: unknown, script: ScriptName): boolean {
  const seen = scriptOf.get(item);
  if (seen !== undefined && seen !== script) return false;
  scriptOf.set(item, script);
  return true;
}

/** Hands each call of a command its reply (a run's reply is the list of its calls' replies). */
function deliver(entry: Entry, reply: unknown): void {
  if (!entry.batched) {
    (entry.calls[0] as Call).resolve(reply);
    return;
  }
  if (!Array.isArray(reply) || reply.length !== entry.calls.length) {
    const error = new RedisCommandError(entry.script, new Error('unexpected reply to a run of several calls'));
    for (const call of entry.calls) call.reject(error);
    return;
  }
  for (let i = 0; i < reply.length; i++) {
    const item: unknown = reply[i];
    const call = entry.calls[i] as Call;
    if (item instanceof Error) call.reject(item);
    else call.resolve(item);
  }
}

const coalescers = new WeakMap<RedisLike, Coalescer>();

/**
 * {@link evalScript}, with the calls a busy client issues in one turn of the event loop sent
 * together (see {@link Coalescer}): the same replies and errors per call, fewer requests.
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
