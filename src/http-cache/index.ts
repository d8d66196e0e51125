export { type Reply, writeReply } from './capture.js';
export type { CapturedResponse, StoredResponse } from './entry.js';
export { type CacheStatus, type Decision, HttpCache, REFRESH_HEADER, type Replay } from './http-cache.js';
export { normalizeTarget, type RequestInfo, requestKey } from './key.js';
export type { HttpCacheOptions } from './options.js';
export { STORABLE_STATUSES } from './policy.js';
