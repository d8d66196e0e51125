/**
 * redscale for NestJS: `RedscaleModule`, a drop-in `ThrottlerStorage` for @nestjs/throttler and a
 * Redis health indicator for @nestjs/terminus.
 *
 * @packageDocumentation
 */
export { CacheHealthIndicator } from './cache-indicator.js';
export { RedisHealthIndicator } from './health-indicator.js';
export { HttpCached, type HttpCachedOptions, HttpCacheInterceptor } from './http-cache.js';
export { RedscaleModule, type RedscaleModuleAsyncOptions, type RedscaleModuleOptions } from './module.js';
export {
  RedscaleThrottlerStorage,
  type RedscaleThrottlerStorageOptions,
  type ThrottlerStorageRecord,
} from './throttler-storage.js';
export { REDSCALE_OPTIONS, REDSCALE_REDIS } from './tokens.js';
