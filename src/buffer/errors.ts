import { RedscaleError } from '../common/errors.js';

/**
 * A write buffer is at its bound, so nothing was added: `enqueue` was refused because the
 * shard's backlog is full (consumers are behind or down), or a failing item could not be
 * dead-lettered because the dead-letter stream is full (it stays in the buffer). Backpressure
 * instead of loss: retry later, shed load, or raise the bound.
 */
export class WriteBufferFullError extends RedscaleError {
  /** The buffer's name. */
  readonly buffer: string;
  /** Which stream is full. */
  readonly stream: 'backlog' | 'dead-letters';
  /** The shard that is full. */
  readonly shard: number;
  /** The shard's bound. */
  readonly limit: number;

  constructor(buffer: string, stream: 'backlog' | 'dead-letters', shard: number, limit: number, ids?: string[]) {
    const what =
      stream === 'backlog'
        ? `is full (${limit} items not yet committed in shard ${shard}): the item was not added`
        : `has a full dead-letter stream (${limit} in shard ${shard}): failing items stay in the buffer`;
    super('ERR_BUFFER_FULL', `redscale: write buffer "${buffer}" ${what}`, {
      context: { buffer, stream, shard, limit, ...(ids && { ids }) },
    });
    this.buffer = buffer;
    this.stream = stream;
    this.shard = shard;
    this.limit = limit;
  }
}
