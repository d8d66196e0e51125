import { formatDuration } from '../common/duration.js';
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

/**
 * An `enqueue` (or `enqueueMany`) reached the primary, but fewer replicas than the buffer's
 * `replicas` option asks for acknowledged it within `replicationTimeout` (Redis `WAIT`). The items
 * were **still written** to the primary and may well be delivered; a failover right now could also
 * lose them, which is what the option guards against. Delivery stays at least once: retry with
 * the same ids (`context.ids`, also {@link ids}) and let `flush` drop the duplicates by id.
 */
export class WriteBufferNotReplicatedError extends RedscaleError {
  /** The buffer's name. */
  readonly buffer: string;
  /** The shard the items went to. */
  readonly shard: number;
  /** The ids of the items, in order: retry with them. */
  readonly ids: readonly string[];
  /** Replicas the buffer asks for. */
  readonly required: number;
  /** Replicas that acknowledged in time. */
  readonly acknowledged: number;

  constructor(buffer: string, shard: number, ids: string[], required: number, acknowledged: number, timeoutMs: number) {
    super(
      'ERR_NOT_REPLICATED',
      `redscale: write buffer "${buffer}" wrote ${ids.length} item${ids.length === 1 ? '' : 's'} to the primary, but only ${acknowledged} of the ${required} replica${required === 1 ? '' : 's'} asked for acknowledged within ${formatDuration(timeoutMs)}; a failover could lose ${ids.length === 1 ? 'it' : 'them'}: retry with the same ids`,
      { context: { buffer, shard, ids, required, acknowledged, timeoutMs } },
    );
    this.buffer = buffer;
    this.shard = shard;
    this.ids = ids;
    this.required = required;
    this.acknowledged = acknowledged;
  }
}
