export { Cache } from './cache.js';
export { CachedLoaderError } from './filler.js';
export {
  type CacheOptions,
  type GetOrSetOptions,
  jsonSerializer,
  type ReadOptions,
  type Serializer,
  type WriteOptions,
} from './options.js';
export { escapeGlob } from './patterns.js';
export type { InferOutput, StandardSchemaV1 } from './schema.js';
export type { CacheEvents, CacheStats } from './stats.js';
