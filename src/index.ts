/**
 * redscale — Redis scaling primitives for Node services that run as many instances.
 *
 * @packageDocumentation
 */
export * from './buffer/index.js';
export * from './cache/index.js';
export * from './client/index.js';
export { type Duration, formatDuration, parseDuration } from './common/duration.js';
export {
  AbortedError,
  InvalidOptionError,
  RedisCommandError,
  RedisTimeoutError,
  RedscaleError,
  type RedscaleErrorCode,
  type RedscaleErrorOptions,
} from './common/errors.js';
export * from './health/index.js';
export * from './http-cache/index.js';
export * from './lock/index.js';
export * from './observability/index.js';
export * from './ratelimit/index.js';
export { VERSION } from './scripts/registry.js';
export * from './shutdown/index.js';
