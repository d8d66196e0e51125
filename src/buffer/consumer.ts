import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Serializer } from '../cache/options.js';
import type { StandardSchemaV1 } from '../cache/schema.js';
import { AbortedError, type RedscaleError } from '../common/errors.js';
import type { ScriptCaller } from './calls.js';
import type { ConsumerStats } from './context.js';
import type { ShardKeys } from './keys.js';
import type { FlushHandler, ResolvedConsumerOptions } from './options.js';
import { ShardWorker } from './shard-worker.js';

/** What a {@link WriteBuffer} gives the consumers it starts. */
export interface ConsumerSetup<T> {
  buffer: string;
  shards: ShardKeys[];
  caller: ScriptCaller;
  serializer: Serializer;
  schema: StandardSchemaV1<unknown, T> | undefined;
  maxDeadLetters: number;
  report(error: RedscaleError): void;
}

/**
 * A running consumer of a {@link WriteBuffer}: one loop per shard delivering batches to `flush`,
 * and a heartbeat that keeps its entries its own while it lives. Made by `buffer.consume()`.
 * Stop it with {@link stop}, which drains: no new reads, the flushes in progress finish and are
 * acknowledged, and what it still holds (items waiting for a retry) is handed to the other
 * consumers at once.
 */
export class BufferConsumer {
  /** This consumer's name in the group. */
  readonly name: string;
  readonly #options: ResolvedConsumerOptions;
  readonly #workers: ShardWorker<unknown>[];
  readonly #stats: ConsumerStats = {
    delivered: 0,
    committed: 0,
    failed: 0,
    deadLettered: 0,
    claimed: 0,
    redisErrors: 0,
  };
  readonly #abort = new AbortController();
  readonly #wakers = new Set<() => void>();
  readonly #heartbeat: NodeJS.Timeout;
  #beating = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  /** @internal Use `WriteBuffer.consume()`. */
  constructor(setup: ConsumerSetup<unknown>, flush: FlushHandler<unknown>, options: ResolvedConsumerOptions) {
    this.name = options.consumerName ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#options = options;
    const context = {
      buffer: setup.buffer,
      consumer: this.name,
      caller: setup.caller,
      options,
      serializer: setup.serializer,
      schema: setup.schema,
      maxDeadLetters: setup.maxDeadLetters,
      flush,
      stats: this.#stats,
      report: setup.report,
      signal: this.#abort.signal,
      stopping: () => this.#stopping,
      sleep: (ms: number) => this.#sleep(ms),
    };
    this.#workers = setup.shards.map((keys) => new ShardWorker(keys, context));
    this.#heartbeat = setInterval(() => void this.#beat(), Math.max(10, options.claimIdle / 3));
    this.#heartbeat.unref?.();
  }

  /** Whether it is consuming (not stopping or stopped). */
  get running(): boolean {
    return !this.#stopping;
  }

  /** A copy of its counters. */
  stats(): ConsumerStats {
    return { ...this.#stats };
  }

  /**
   * Stops consuming and drains: reads nothing more, waits for the flushes in progress (up to
   * `stopTimeout`, then aborts their `signal` and stops waiting) and their acknowledgements, hands
   * the items it still holds to the other consumers, and leaves the group if nothing of its own
   * is pending. Never rejects; calling it again returns the same promise.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    this.#stopping = true;
    for (const wake of [...this.#wakers]) wake();
    const loops = Promise.all(this.#workers.map((worker) => worker.done));
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      loops.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.#options.stopTimeout);
      }),
    ]);
    clearTimeout(timer);
    if (!finished)
      this.#abort.abort(new AbortedError('write buffer flush', 'the consumer stopped', { consumer: this.name }));
    clearInterval(this.#heartbeat);
    await Promise.all(this.#workers.map((worker) => worker.finish()));
  }

  async #beat(): Promise<void> {
    // It keeps beating while stop() waits for a long flush, and ends with it.
    if (this.#beating) return;
    this.#beating = true;
    try {
      await Promise.all(this.#workers.map((worker) => worker.hold(0)));
    } finally {
      this.#beating = false;
    }
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }
}
