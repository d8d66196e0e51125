import { afterAll } from 'vitest';
import {
  type BufferConsumer,
  type BufferedItem,
  type ConsumerOptions,
  type FlushHandler,
  type RedisLike,
  type RedscaleError,
  WriteBuffer,
  type WriteBufferOptions,
} from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/** Write buffers on one topology with fresh prefixes; stops their consumers and deletes their keys afterwards. */
export function bufferFactory(topology: Topology) {
  const redis: RedisLike = connect(topology);
  const made: Array<{ buffer: WriteBuffer<unknown>; prefix: string }> = [];
  afterAll(async () => {
    for (const { buffer, prefix } of made) {
      await buffer.close();
      await deletePrefix(redis, prefix);
    }
    redis.disconnect();
  });
  return {
    redis,
    /** A buffer with a fresh prefix; its errors are collected in `errors`. */
    make<T = unknown>(
      options: Partial<WriteBufferOptions<T>> = {},
    ): { buffer: WriteBuffer<T>; errors: RedscaleError[] } {
      const prefix = options.prefix ?? randomPrefix('buffer');
      const errors: RedscaleError[] = [];
      const buffer = new WriteBuffer<T>({
        redis,
        name: 'writes',
        onError: (error) => errors.push(error),
        ...options,
        prefix,
      });
      made.push({ buffer: buffer as WriteBuffer<unknown>, prefix });
      return { buffer, errors };
    },
  };
}

/** A sink that records every batch `flush` committed, and can fail items on purpose. */
export function recordingSink<T>(options: { fail?: (item: BufferedItem<T>) => unknown; delayMs?: number } = {}) {
  const batches: BufferedItem<T>[][] = [];
  const committed: BufferedItem<T>[] = [];
  const attempts: BufferedItem<T>[] = [];
  const flush: FlushHandler<T> = async (items) => {
    batches.push(items);
    attempts.push(...items);
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    const failed: Array<{ id: string; error: unknown }> = [];
    for (const item of items) {
      const error = options.fail?.(item);
      if (error) failed.push({ id: item.id, error });
      else committed.push(item);
    }
    return failed.length ? { failed } : undefined;
  };
  return { flush, batches, committed, attempts };
}

/** Fast consumer settings for tests: short polls, short backoff, a short claim idle time. */
export const FAST: ConsumerOptions = {
  flushInterval: 20,
  retryDelay: { min: 20, max: 100 },
  claimIdle: '2s',
  stopTimeout: '5s',
};

/** Stops consumers at the end of a test file even when an assertion failed first. */
export function stopAtEnd(): (consumer: BufferConsumer) => BufferConsumer {
  const consumers: BufferConsumer[] = [];
  afterAll(async () => {
    await Promise.all(consumers.map((consumer) => consumer.stop()));
  });
  return (consumer) => {
    consumers.push(consumer);
    return consumer;
  };
}

export { deletePrefix, randomPrefix, type Topology };
