export { BufferConsumer } from './consumer.js';
export type { ConsumerStats } from './context.js';
export type { DeadLetter, DeadLettersOptions, ReplayOptions, ReplayResult } from './dead-letters.js';
export { WriteBufferFullError, WriteBufferNotReplicatedError } from './errors.js';
export type { ShardKeys } from './keys.js';
export type {
  BufferedItem,
  ConsumerOptions,
  EnqueueManyOptions,
  EnqueueOptions,
  FlushContext,
  FlushHandler,
  FlushResult,
  WriteBufferOptions,
} from './options.js';
export { type BufferBacklog, MAX_ENQUEUE_BATCH, WriteBuffer } from './write-buffer.js';
