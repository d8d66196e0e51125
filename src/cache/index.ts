export { BusMessageError, type DropReason } from './bus-protocol.js';
export { Cache } from './cache.js';
export { CachedLoaderError, type Loader, LoaderTimeoutError } from './load.js';
export type { EntryOptions, LoadContext } from './load-context.js';
export type { SetManyEntry } from './many.js';
export type {
  CacheOptions,
  GetOrSetOptions,
  ReadOptions,
  WriteOptions,
} from './options.js';
export { escapeGlob } from './patterns.js';
export type { InferOutput, StandardSchemaV1 } from './schema.js';
export { type BinarySerializer, binarySerializer, jsonSerializer, type Serializer } from './serializer.js';
export type { CacheEvents, CacheStats } from './stats.js';
export type { WarmEntry, WarmOptions, WarmReport } from './warm.js';
