import { type Channel, channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';

/**
 * The `node:diagnostics_channel` names redscale publishes on. Each operation is a
 * `TracingChannel` (`tracing:<name>:start`, `:end`, `:asyncStart`, `:asyncEnd`, `:error`), whose
 * context object is the operation's message (see {@link LimiterCheckMessage} and the others);
 * `result` or `error` is set on it when the operation settles. Each primitive also has one plain
 * channel for its events (the same events its `on(...)` emits, with the same payloads).
 *
 * With no subscriber nothing is built or published: every call site checks `hasSubscribers`.
 */
export const CHANNELS = {
  /** `RateLimiter.consume`, `peek` and `hit`: {@link LimiterCheckMessage}. */
  limiterCheck: 'redscale:limiter.check',
  /** `Cache.get`: {@link CacheOperationMessage}. */
  cacheGet: 'redscale:cache.get',
  /** `Cache.set`: {@link CacheOperationMessage}. */
  cacheSet: 'redscale:cache.set',
  /** `Cache.getOrSet`: {@link CacheOperationMessage}. */
  cacheGetOrSet: 'redscale:cache.getOrSet',
  /** One loader run (foreground or background refresh): {@link CacheOperationMessage}. */
  cacheLoad: 'redscale:cache.load',
  /** `Cache.delete`, `invalidateTags` and `invalidatePattern`: {@link CacheOperationMessage}. */
  cacheInvalidate: 'redscale:cache.invalidate',
  /** `Lock.acquire`, `tryAcquire`, `acquireAll`, `tryAcquireAll` (and so `withLock`): {@link LockOperationMessage}. */
  lockAcquire: 'redscale:lock.acquire',
  /** A lock's `extend` (by hand or automatic): {@link LockOperationMessage}. */
  lockExtend: 'redscale:lock.extend',
  /** A lock's `release`: {@link LockOperationMessage}. */
  lockRelease: 'redscale:lock.release',
  /** `RedisHealth.check`: {@link HealthCheckMessage}. */
  healthCheck: 'redscale:health.check',
  /** Events of every RateLimiter: {@link EventMessage}. */
  limiterEvents: 'redscale:limiter',
  /** Events of every Cache: {@link EventMessage}. */
  cacheEvents: 'redscale:cache',
  /** Events of every Lock: {@link EventMessage}. */
  lockEvents: 'redscale:lock',
} as const;

/** What every traced operation's message has. */
export interface OperationMessage {
  /** The prefix of the primitive that ran it (tells several instances apart). */
  prefix: string;
  /** Set by the channel when the operation resolved. */
  result?: unknown;
  /** Set by the channel when the operation rejected. */
  error?: unknown;
}

/** Message of `redscale:limiter.check`. `id` is the raw identity: never use it as a metric label. */
export interface LimiterCheckMessage extends OperationMessage {
  /** The limiter method that made the check. */
  operation: 'consume' | 'peek' | 'hit';
  /** The identity checked. */
  id: string;
  /** Units the call costs. */
  cost: number;
  /** The `RateLimitResult` once resolved. */
  result?: import('../ratelimit/result.js').RateLimitResult;
}

/** Message of the `redscale:cache.*` channels. `key` is the raw key: never use it as a metric label. */
export interface CacheOperationMessage extends OperationMessage {
  /** The cache method (or `load`: the loader's run inside `getOrSet`). */
  operation: 'get' | 'set' | 'getOrSet' | 'load' | 'delete' | 'invalidateTags' | 'invalidatePattern';
  /** The key (`delete`: the first key; `invalidateTags`, `invalidatePattern`: absent). */
  key?: string;
  /** `invalidateTags`: the tags; `invalidatePattern`: the pattern. */
  tags?: string[];
  /** `invalidatePattern`: the pattern. */
  pattern?: string;
  /** For `get` and `getOrSet`: where the answer came from, set before the operation settles. */
  outcome?: 'l1' | 'l2' | 'stale' | 'miss';
}

/** Message of the `redscale:lock.*` channels. `resources` are raw names: never use them as metric labels. */
export interface LockOperationMessage extends OperationMessage {
  /** The lock operation. */
  operation: 'acquire' | 'extend' | 'release';
  /** The resources of the lock (one, or several taken together). */
  resources: readonly string[];
  /** For `acquire`: how long it waited, in ms; set before it settles. */
  waitedMs?: number;
  /** For `acquire`: how many attempts it made. */
  attempts?: number;
}

/** Message of `redscale:health.check`. */
export interface HealthCheckMessage extends OperationMessage {
  /** The `HealthReport` once resolved. */
  result?: import('../health/report.js').HealthReport;
}

/** Message of the per-primitive event channels: one `on(event, …)` event of one instance. */
export interface EventMessage {
  /** The prefix of the instance that emitted it. */
  prefix: string;
  /** The event's name, as passed to `on()`. */
  event: string;
  /** The event's payload, as given to `on()` listeners. */
  payload: unknown;
}

/** The tracing channels, created once. */
export const tracing = {
  limiterCheck: tracingChannel<unknown, LimiterCheckMessage>(CHANNELS.limiterCheck),
  cacheGet: tracingChannel<unknown, CacheOperationMessage>(CHANNELS.cacheGet),
  cacheSet: tracingChannel<unknown, CacheOperationMessage>(CHANNELS.cacheSet),
  cacheGetOrSet: tracingChannel<unknown, CacheOperationMessage>(CHANNELS.cacheGetOrSet),
  cacheLoad: tracingChannel<unknown, CacheOperationMessage>(CHANNELS.cacheLoad),
  cacheInvalidate: tracingChannel<unknown, CacheOperationMessage>(CHANNELS.cacheInvalidate),
  lockAcquire: tracingChannel<unknown, LockOperationMessage>(CHANNELS.lockAcquire),
  lockExtend: tracingChannel<unknown, LockOperationMessage>(CHANNELS.lockExtend),
  lockRelease: tracingChannel<unknown, LockOperationMessage>(CHANNELS.lockRelease),
  healthCheck: tracingChannel<unknown, HealthCheckMessage>(CHANNELS.healthCheck),
} satisfies Record<string, TracingChannel<unknown, OperationMessage>>;

/** The event channels, created once. */
export const eventChannels: { limiter: Channel; cache: Channel; lock: Channel } = {
  limiter: channel(CHANNELS.limiterEvents),
  cache: channel(CHANNELS.cacheEvents),
  lock: channel(CHANNELS.lockEvents),
};

/**
 * Whether anyone subscribed to a tracing channel. `TracingChannel.hasSubscribers` exists from
 * Node 20.13; the start channel answers the same on older 20.x.
 */
export function traced(tracer: TracingChannel<unknown, OperationMessage>): boolean {
  return tracer.start.hasSubscribers;
}
