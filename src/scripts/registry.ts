import { createHash } from 'node:crypto';
import { nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import cacheInvalidateTags from './lua/cache-invalidate-tags.lua';
import cacheTags from './lua/cache-tags.lua';
import healthProbe from './lua/health-probe.lua';
import lockAcquire from './lua/lock-acquire.lua';
import lockExtend from './lua/lock-extend.lua';
import lockRelease from './lua/lock-release.lua';
import ratelimit from './lua/ratelimit.lua';
import ratelimitAnchored from './lua/ratelimit-anchored.lua';
import ratelimitFixed from './lua/ratelimit-fixed.lua';
import ratelimitLog from './lua/ratelimit-log.lua';
import ratelimitRefund from './lua/ratelimit-refund.lua';
import ratelimitReset from './lua/ratelimit-reset.lua';
import ratelimitSliding from './lua/ratelimit-sliding.lua';

declare const __REDSCALE_VERSION__: string | undefined;

/** The package version, baked in at build time; `0.0.0-dev` when running from source. */
export const VERSION: string = typeof __REDSCALE_VERSION__ === 'string' ? __REDSCALE_VERSION__ : '0.0.0-dev';

/** Every Lua script redscale runs. Keys are the script names used by {@link runScript}. */
export const SCRIPTS = {
  cacheInvalidateTags,
  cacheTags,
  healthProbe,
  lockAcquire,
  lockExtend,
  lockRelease,
  ratelimit,
  ratelimitAnchored,
  ratelimitFixed,
  ratelimitLog,
  ratelimitRefund,
  ratelimitReset,
  ratelimitSliding,
} as const satisfies Record<string, string>;

/** The name of a redscale script. */
export type ScriptName = keyof typeof SCRIPTS;

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
 * Runs a script in one round trip. The first call of a script on each of the client's servers
 * is an EVAL (which also caches it there), later ones are EVALSHA; should Redis have lost it (a
 * restart, a failover, `SCRIPT FLUSH`), the NOSCRIPT reply is answered with an EVAL: one extra
 * round trip, once. So a script is never `SCRIPT LOAD`ed (through a Cluster client that would
 * reach one random node). Keys go in KEYS (never built into the Lua), so ioredis routes the call
 * on a Cluster by its first key and adds the client's `keyPrefix` to each; all keys of one call
 * must share a `{hash tag}`.
 *
 * Plain EVALSHA rather than ioredis `defineCommand`: no per-client command registry, nothing
 * for an auto-pipeline opened earlier in the tick to miss, and fewer instructions per call.
 */
export function runScript(
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
