/**
 * redscale for Express: rate-limit middleware, a store for express-rate-limit, and health routes.
 *
 * @packageDocumentation
 */
export { healthRoutes } from './health.js';
export { PROXY_WARNING_TYPE, type ProxyChecks, type ProxyWarningCode } from './proxy-check.js';
export { type RateLimitMiddlewareOptions, rateLimit } from './rate-limit.js';
export { RedscaleStore, type RedscaleStoreOptions } from './store.js';
