/**
 * redscale for Express: rate-limit middleware, a store for express-rate-limit, and health routes.
 *
 * @packageDocumentation
 */
export { type HealthRoutesExtras, healthRoutes } from './health.js';
export { httpCache } from './http-cache.js';
export { PROXY_WARNING_TYPE, type ProxyChecks, type ProxyWarningCode } from './proxy-check.js';
export { type RateLimitMiddlewareOptions, rateLimit } from './rate-limit.js';
export { RedscaleStore, type RedscaleStoreOptions } from './store.js';
