/**
 * redscale for Fastify: a plugin with route-level rate limits and the core primitives, a store
 * for @fastify/rate-limit, and health routes.
 *
 * @packageDocumentation
 */

export type { RouteHttpCache } from './http-cache.js';
export type { RequestList } from './lists.js';
export { type RedscaleDecoration, type RedscalePluginOptions, type RouteRateLimit, redscale } from './plugin.js';
export type { RateLimitHooks, RateLimitRedisError, RefusalContext } from './refusal.js';
export { type FastifyRateLimitStore, type FastifyStoreOptions, redscaleStore } from './store.js';
