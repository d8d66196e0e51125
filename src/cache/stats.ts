/** What a cache has done since it was created; `Cache.stats()` returns a snapshot. */
export interface CacheStats {
  /** Hits served from the in-process L1 (no I/O). */
  l1Hits: number;
  /** Hits served from Redis. */
  l2Hits: number;
  /** Reads that found nothing usable (absent, expired, invalidated, undecodable or invalid). */
  misses: number;
  /** Stale values served on purpose (stale-while-revalidate, stale-if-error). */
  staleServed: number;
  /** Loader runs (foreground and background). */
  loads: number;
  /** Loader runs that threw. */
  loadErrors: number;
  /** `getOrSet` calls that gave up waiting for a load at their `hardTimeout`. */
  hardTimeouts: number;
  /** Times a caller waited for another instance's load instead of loading. */
  lockWaits: number;
  /** Keys deleted by `delete`. */
  deletedKeys: number;
  /** Tags invalidated by `invalidateTags`. */
  invalidatedTags: number;
  /** Keys deleted by `invalidatePattern`. */
  invalidatedPatternKeys: number;
  /**
   * Redis calls that failed or timed out (one per `redis-error` event: both come from one place),
   * including those of the bus' subscriber connection.
   */
  redisErrors: number;
  /** Redis calls not sent because their node's circuit breaker was open. */
  breakerSkips: number;
  /** Times a node's circuit breaker opened. */
  breakerOpens: number;
  /** Times the invalidation bus stopped delivering (a drop, or a missed heartbeat): L1 and remembered tag versions were flushed. */
  busDrops: number;
  /** Of those, the times a heartbeat did not come back (the subscription was open but deaf). */
  heartbeatsMissed: number;
  /** Bus messages dropped as malformed, too large or of a newer format. */
  busMessagesDropped: number;
  /** Tag versions remembered right now (at most `maxRememberedTags`). */
  rememberedTags: number;
}

/** Every counter at zero. */
export function emptyStats(): CacheStats {
  return {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    staleServed: 0,
    loads: 0,
    loadErrors: 0,
    hardTimeouts: 0,
    lockWaits: 0,
    deletedKeys: 0,
    invalidatedTags: 0,
    invalidatedPatternKeys: 0,
    redisErrors: 0,
    breakerSkips: 0,
    breakerOpens: 0,
    busDrops: 0,
    heartbeatsMissed: 0,
    busMessagesDropped: 0,
    rememberedTags: 0,
  };
}

/** Events a Cache emits (listen with `cache.on(name, listener)`); built only when listened to (or subscribed to on `redscale:cache`). */
export interface CacheEvents {
  /** A value was served: from L1 or L2 (Redis), fresh or `stale`. */
  hit: [{ key: string; layer: 'l1' | 'l2'; stale: boolean }];
  /** No usable value was found for `key`. */
  miss: [{ key: string }];
  /** The loader ran for `key` and returned a value, in `durationMs`. */
  load: [{ key: string; durationMs: number }];
  /** The loader threw (or timed out) for `key`. */
  'load-error': [{ key: string; error: unknown }];
  /** A Redis call failed or timed out: one event per `stats().redisErrors`. */
  'redis-error': [{ error: import('../common/errors.js').RedscaleError }];
  /** Keys, tags or a pattern were invalidated through this instance. */
  invalidate: [{ keys?: string[]; tags?: string[]; pattern?: string }];
  /** The bus stopped delivering (`drop`: the connection closed; `heartbeat`: a heartbeat did not come back). */
  'bus-drop': [{ cause: 'drop' | 'heartbeat' }];
  /** A bus message was dropped (malformed, too large, or of a newer format: reported once per format). */
  'bus-message-dropped': [{ error: import('./bus-protocol.js').BusMessageError }];
  /** A node's circuit breaker opened (Redis is skipped there) or closed again. */
  breaker: [{ node: string; state: 'open' | 'closed' }];
}
