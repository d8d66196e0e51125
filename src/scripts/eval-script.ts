import { createHash } from 'node:crypto';
import { nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { SCRIPTS, type ScriptName } from './registry.js';

const shas = new Map<ScriptName, string>();

/**
 * The SHA1 Redis knows a script by. It is a hash of the script's text, so two redscale versions
 * sharing one Redis (or one client) never run each other's scripts unless the text is identical.
 */
export function shaOf(script: ScriptName): string {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(SCRIPTS[script]).digest('hex');
    shas.set(script, sha);
  }
  return sha;
}

/** Whether Redis answered that it does not have the script (after a restart, failover or SCRIPT FLUSH). */
export function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/** A Cluster reply saying the command ran nowhere and belongs elsewhere (or later): MOVED, ASK, TRYAGAIN. */
export function isRedirection(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK|TRYAGAIN) /.test(error.message);
}

/** ioredis refused a Cluster pipeline whose keys its current slot map puts on different nodes (nothing was sent). */
export function isSplitPipeline(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('All keys in the pipeline should belong to the same slots');
}

/** Scripts each client has sent as EVAL, per node: there EVALSHA finds them (until a restart). */
const sentByClient = new WeakMap<RedisLike, Map<string, Set<ScriptName>>>();

/** Whether this client has sent `script` as EVAL to the node of `firstKey` (so EVALSHA should find it). */
export function wasSent(redis: RedisLike, script: ScriptName, firstKey: string | undefined): boolean {
  return sentTo(redis, firstKey).has(script);
}

function sentTo(redis: RedisLike, firstKey: string | undefined): Set<ScriptName> {
  let byNode = sentByClient.get(redis);
  if (!byNode) {
    byNode = new Map();
    sentByClient.set(redis, byNode);
  }
  const node = isCluster(redis) && firstKey !== undefined ? nodeOf(redis, firstKey) : '';
  let sent = byNode.get(node);
  if (!sent) {
    sent = new Set();
    byNode.set(node, sent);
  }
  return sent;
}

/**
 * Runs a script in one round trip as plain EVAL/EVALSHA. The first call of a script on each of the client's servers
 * is an EVAL (which also caches it there), later ones are EVALSHA; should Redis have lost it (a
 * restart, a failover, `SCRIPT FLUSH`), the NOSCRIPT reply is answered with an EVAL: one extra
 * round trip, once. So a script is never `SCRIPT LOAD`ed (through a Cluster client that would
 * reach one random node). Keys go in KEYS (never built into the Lua), so ioredis routes the call
 * on a Cluster by its first key and adds the client's `keyPrefix` to each; all keys of one call
 * must share a `{hash tag}`.
 *
 * Plain EVALSHA rather than ioredis `defineCommand` ({@link runScript}): no per-client command
 * registry, nothing for an auto-pipeline opened earlier in the tick to miss, fewer instructions
 * per call, and a pipeline of script calls (the limiter's batches on a Cluster) can be built
 * from plain `evalsha`. The rate limiter's scripts go this way.
 */
export function evalScript(
  redis: RedisLike,
  script: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  const keysAndArgs = args.length === 0 ? keys : keys.length === 0 ? args : [...keys, ...args];
  const sent = sentTo(redis, keys[0]);
  if (!sent.has(script)) {
    // Requests on one connection run in order: calls sent after this EVAL find the script.
    sent.add(script);
    return redis.eval(SCRIPTS[script], keys.length, ...keysAndArgs);
  }
  return redis.evalsha(shaOf(script), keys.length, ...keysAndArgs).catch((error: unknown) => {
    if (!isNoScript(error)) throw error;
    return redis.eval(SCRIPTS[script], keys.length, ...keysAndArgs);
  });
}
