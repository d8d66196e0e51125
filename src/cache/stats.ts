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
  /** Times a caller waited for another instance's load instead of loading. */
  lockWaits: number;
  /** Keys deleted by `delete`. */
  deletedKeys: number;
  /** Tags invalidated by `invalidateTags`. */
  invalidatedTags: number;
  /** Keys deleted by `invalidatePattern`. */
  invalidatedPatternKeys: number;
  /** Redis failures the cache absorbed (the caller got a loader value or a miss instead). */
  redisErrors: number;
  /** Times the invalidation bus dropped (L1 and remembered tag versions were flushed). */
  busDrops: number;
}

export function emptyStats(): CacheStats {
  return {
    l1Hits: 0,
    l2Hits: 0,
    misses: 0,
    staleServed: 0,
    loads: 0,
    loadErrors: 0,
    lockWaits: 0,
    deletedKeys: 0,
    invalidatedTags: 0,
    invalidatedPatternKeys: 0,
    redisErrors: 0,
    busDrops: 0,
  };
}

/** Events a Cache emits (listen with `cache.on(name, listener)`); emitted only when listened to. */
export interface CacheEvents {
  hit: [{ key: string; layer: 'l1' | 'l2'; stale: boolean }];
  miss: [{ key: string }];
  load: [{ key: string; durationMs: number }];
  'load-error': [{ key: string; error: unknown }];
  'redis-error': [{ error: import('../common/errors.js').RedscaleError }];
  invalidate: [{ keys?: string[]; tags?: string[]; pattern?: string }];
  'bus-drop': [];
}
