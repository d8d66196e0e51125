import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorResult } from '@nestjs/terminus';
import { Cache } from '../../cache/cache.js';

/**
 * A @nestjs/terminus indicator that reports the module's cache: its hit rate, its circuit
 * breakers per Redis node, whether its invalidation bus delivers, and its Redis error count.
 * Always `up`: the cache answers through a Redis outage (a miss, then the loader), so it must not
 * take the instance out of rotation — readiness is `RedisHealthIndicator`'s job. No I/O.
 *
 * ```ts
 * @Get('stats') @HealthCheck()
 * stats() { return this.health.check([() => this.cache.isHealthy('cache')]) }
 * ```
 */
@Injectable()
export class CacheHealthIndicator {
  readonly #cache: Cache | null;

  /** Nest injects the module's `Cache` (`null` with `cache: false`); outside Nest, pass one. */
  constructor(@Inject(Cache) cache: Cache | null) {
    this.#cache = cache;
  }

  /** The cache's state in Terminus' indicator format, `{ [key]: { status: 'up', …details } }`. Never rejects. */
  async isHealthy<Key extends string = 'cache'>(key: Key = 'cache' as Key): Promise<HealthIndicatorResult<Key>> {
    const cache = this.#cache;
    const details = cache
      ? {
          hitRate: cache.hitRate(),
          circuitBreakers: cache.circuitBreakers(),
          busConnected: cache.busConnected,
          redisErrors: cache.stats().redisErrors,
        }
      : { cache: 'disabled' };
    // Written out like RedisHealthIndicator's, so nothing is imported from @nestjs/terminus at run time.
    const result: HealthIndicatorResult<string> = { [key]: { ...details, status: 'up' } };
    return result as HealthIndicatorResult<Key>;
  }
}
