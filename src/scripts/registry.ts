import type { RedisLike } from '../client/types.js';
import bufferAck from './lua/buffer-ack.lua';
import bufferClaim from './lua/buffer-claim.lua';
import bufferDeadLetter from './lua/buffer-dead-letter.lua';
import bufferEnqueue from './lua/buffer-enqueue.lua';
import bufferHold from './lua/buffer-hold.lua';
import bufferPrune from './lua/buffer-prune.lua';
import bufferRead from './lua/buffer-read.lua';
import bufferReplay from './lua/buffer-replay.lua';
import bufferRetry from './lua/buffer-retry.lua';
import cacheDelete from './lua/cache-delete.lua';
import cacheFill from './lua/cache-fill.lua';
import cacheFillLock from './lua/cache-fill-lock.lua';
import cacheFillUnlock from './lua/cache-fill-unlock.lua';
import cacheInvalidateTags from './lua/cache-invalidate-tags.lua';
import cacheSet from './lua/cache-set.lua';
import cacheSetMany from './lua/cache-set-many.lua';
import cacheTags from './lua/cache-tags.lua';
import cacheTagsSince from './lua/cache-tags-since.lua';
import healthProbe from './lua/health-probe.lua';
import lockAcquire from './lua/lock-acquire.lua';
import lockExtend from './lua/lock-extend.lua';
import lockRelease from './lua/lock-release.lua';
import lockSemaphoreAcquire from './lua/lock-semaphore-acquire.lua';
import lockSemaphoreExtend from './lua/lock-semaphore-extend.lua';
import lockSemaphoreRelease from './lua/lock-semaphore-release.lua';
import batchFailure from './lua/parts/batch-failure.lua';
import ratelimit from './lua/ratelimit.lua';
import ratelimitAnchored from './lua/ratelimit-anchored.lua';
import ratelimitFixed from './lua/ratelimit-fixed.lua';
import ratelimitGcra from './lua/ratelimit-gcra.lua';
import ratelimitLog from './lua/ratelimit-log.lua';
import ratelimitRefund from './lua/ratelimit-refund.lua';
import ratelimitReset from './lua/ratelimit-reset.lua';
import ratelimitSliding from './lua/ratelimit-sliding.lua';
import ratelimitWindows from './lua/ratelimit-windows.lua';

declare const __REDSCALE_VERSION__: string | undefined;

/** The package version, baked in at build time; `0.0.0-dev` when running from source. */
export const VERSION: string = typeof __REDSCALE_VERSION__ === 'string' ? __REDSCALE_VERSION__ : '0.0.0-dev';

/** A rate-limit script that decides batches: the shared `failed()` it calls, then its own text. */
const batched = (source: string): string => batchFailure + source;

/** Every Lua script redscale runs. Keys are the script names used by {@link runScript}. */
export const SCRIPTS = {
  cacheDelete,
  cacheFill,
  cacheFillLock,
  cacheFillUnlock,
  bufferAck,
  bufferClaim,
  bufferDeadLetter,
  bufferEnqueue,
  bufferHold,
  bufferPrune,
  bufferRead,
  bufferReplay,
  bufferRetry,
  cacheInvalidateTags,
  cacheSet,
  cacheSetMany,
  cacheTags,
  cacheTagsSince,
  healthProbe,
  lockAcquire,
  lockExtend,
  lockRelease,
  lockSemaphoreAcquire,
  lockSemaphoreExtend,
  lockSemaphoreRelease,
  ratelimit: batched(ratelimit),
  ratelimitAnchored: batched(ratelimitAnchored),
  ratelimitFixed: batched(ratelimitFixed),
  ratelimitGcra: batched(ratelimitGcra),
  ratelimitLog: batched(ratelimitLog),
  ratelimitRefund,
  ratelimitReset,
  ratelimitSliding: batched(ratelimitSliding),
  ratelimitWindows: batched(ratelimitWindows),
} as const satisfies Record<string, string>;

/** The name of a redscale script. */
export type ScriptName = keyof typeof SCRIPTS;

const VERSION_TAG = VERSION.replace(/[^0-9A-Za-z]/g, '_');

/**
 * The ioredis command a script is registered under for a given number of keys. It carries the
 * package version, so two redscale versions can share one client without running each other's
 * scripts. The key count is fixed per command because ioredis routes an auto-pipelined custom
 * command on Cluster by its first argument, which must therefore be the first key.
 */
export function commandName(script: ScriptName, keyCount: number): string {
  return `redscale_v${VERSION_TAG}_${script}_${keyCount}`;
}

type ScriptCommand = (...keysAndArgs: Array<string | number | Buffer>) => Promise<unknown>;

/** The parts of ioredis' internals that {@link commandFor} has to keep consistent. */
interface ScriptHost {
  scriptsSet?: Record<string, { sha: string }>;
  _autoPipelines?: Map<string, PendingPipeline>;
  [command: string]: unknown;
}
interface PendingPipeline {
  _shaToScript?: Record<string, unknown>;
  [command: string]: unknown;
}

const commandsByClient = new WeakMap<object, Map<string, ScriptCommand>>();

/**
 * The client's command for a script, registered with `defineCommand` on first use. ioredis sends
 * EVAL the first time a connection runs a script and EVALSHA after that, and on NOSCRIPT (after a
 * restart, failover or SCRIPT FLUSH) resends it as EVAL, so a script is never `SCRIPT LOAD`ed
 * through a Cluster client (that would reach one random node).
 */
function commandFor(redis: RedisLike, script: ScriptName, keyCount: number): ScriptCommand {
  let commands = commandsByClient.get(redis);
  if (!commands) {
    commands = new Map();
    commandsByClient.set(redis, commands);
  }
  const name = commandName(script, keyCount);
  let command = commands.get(name);
  if (!command) {
    const host = redis as unknown as ScriptHost;
    if (typeof host[name] !== 'function') redis.defineCommand(name, { lua: SCRIPTS[script], numberOfKeys: keyCount });
    adoptIntoPendingPipelines(host, name);
    command = host[name] as ScriptCommand;
    commands.set(name, command);
  }
  return command;
}

/**
 * An auto-pipeline opened earlier in this tick copied the client's commands when it was created
 * and would not know a command defined since; calling it there throws inside ioredis. Give the
 * pending pipelines the new command, as ioredis' Pipeline constructor would have.
 */
function adoptIntoPendingPipelines(host: ScriptHost, command: string): void {
  const script = host.scriptsSet?.[command];
  if (!script || !(host._autoPipelines instanceof Map)) return;
  for (const pipeline of host._autoPipelines.values()) {
    if (typeof pipeline[command] === 'function') continue;
    pipeline[command] = host[command];
    pipeline[`${command}Buffer`] = host[`${command}Buffer`];
    if (pipeline._shaToScript) pipeline._shaToScript[script.sha] = script;
  }
}

/**
 * Runs a script in one round trip through an ioredis command registered with `defineCommand`
 * (see {@link commandFor}). Keys go in KEYS (never built into the Lua), so the script can be
 * routed on Cluster; all keys of one call must share a `{hash tag}`. The rate limiter's hot path
 * uses {@link evalScript} (plain EVALSHA) instead.
 */
export function runScript(
  redis: RedisLike,
  script: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number | Buffer>,
): Promise<unknown> {
  return commandFor(redis, script, keys.length).call(redis, ...keys, ...args);
}
