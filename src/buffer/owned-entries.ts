import { performance } from 'node:perf_hooks';
import type { ScriptCaller } from './calls.js';
import { isGroupLost, type WorkerContext } from './context.js';
import { WriteBufferFullError } from './errors.js';
import { GROUP, type ShardKeys } from './keys.js';

interface Retry {
  dueAt: number;
  error: string;
}

/** An entry to move to the dead letters, with what it carries there. */
export interface DeadRequest {
  deliveries: number;
  error: string;
  /** When the move may be tried (again, after a full dead-letter stream). */
  dueAt: number;
}

const CHUNK = 500;

/**
 * What one consumer's shard owns in the group, between delivery and leaving the group: each
 * entry is in flight, waiting for a retry, committed but not yet acknowledged, or waiting to be
 * dead-lettered. The heartbeat holds all of them, so no other consumer takes them while this one
 * lives; acknowledgements and dead-letter moves that failed are tried again until they land.
 */
export class OwnedEntries<T> {
  readonly #keys: ShardKeys;
  readonly #context: WorkerContext<T>;
  readonly inFlight = new Set<string>();
  readonly #retries = new Map<string, Retry>();
  readonly #unacked = new Set<string>();
  readonly #undead = new Map<string, DeadRequest>();

  constructor(keys: ShardKeys, context: WorkerContext<T>) {
    this.#keys = keys;
    this.#context = context;
  }

  /** How many entries wait for a retry. */
  get retrying(): number {
    return this.#retries.size;
  }

  /** Every entry owned. */
  held(): string[] {
    return [...this.inFlight, ...this.#retries.keys(), ...this.#unacked, ...this.#undead.keys()];
  }

  /** Whether an entry is committed or condemned already, waiting only for that to reach Redis. */
  settling(entryId: string): boolean {
    return this.#unacked.has(entryId) || this.#undead.has(entryId);
  }

  /** Schedules a retry of a failed entry after a jittered exponential backoff. */
  retryLater(entryId: string, deliveries: number, error: string): void {
    const { min, max } = this.#context.options.retryDelay;
    const ceiling = Math.min(max, min * 2 ** Math.min(deliveries - 1, 30));
    this.#retries.set(entryId, { dueAt: performance.now() + ceiling / 2 + Math.random() * (ceiling / 2), error });
  }

  /** Entries whose retry is due, at most `limit`. */
  dueRetries(limit: number): string[] {
    const now = performance.now();
    const due: string[] = [];
    for (const [id, retry] of this.#retries) {
      if (retry.dueAt <= now) due.push(id);
      if (due.length >= limit) break;
    }
    return due;
  }

  /** Stops tracking a retry (delivered again, or no longer ours); returns its last error. */
  takeRetry(entryId: string): string | undefined {
    const retry = this.#retries.get(entryId);
    this.#retries.delete(entryId);
    return retry?.error;
  }

  /** Records entries `flush` committed; {@link acknowledge} sends them. */
  committed(entryIds: Iterable<string>): void {
    for (const id of entryIds) this.#unacked.add(id);
  }

  /** Records entries to dead-letter; {@link deadLetter} moves them. */
  condemn(entryId: string, request: DeadRequest): void {
    this.#undead.set(entryId, request);
  }

  /** Acknowledges (and deletes) the committed entries. Rejects on a Redis failure; they stay for the next try. */
  async acknowledge(): Promise<void> {
    const ids = [...this.#unacked];
    const { caller } = this.#context;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      try {
        await caller.run(
          'bufferAck',
          [this.#keys.stream],
          [GROUP, ...chunk],
          caller.deadline(),
          'write buffer ack',
          this.#where(),
        );
      } catch (error) {
        if (this.forgetIfGroupLost(error)) return;
        throw error;
      }
      for (const id of chunk) this.#unacked.delete(id);
    }
  }

  /**
   * Moves the condemned entries that are due to the dead letters. When the dead-letter stream is
   * full they stay here (and in the buffer), the error is reported, and the move is tried again
   * after `retryDelay.max`. Rejects on a Redis failure; they stay for the next try.
   */
  async deadLetter(): Promise<void> {
    const now = performance.now();
    const ready = [...this.#undead].filter(([, request]) => request.dueAt <= now).slice(0, CHUNK);
    if (!ready.length) return;
    const { caller, consumer, maxDeadLetters, options } = this.#context;
    let reply: Awaited<ReturnType<ScriptCaller['stamped']>>;
    try {
      reply = await caller.stamped(
        'bufferDeadLetter',
        [this.#keys.stream, this.#keys.deadLetters],
        (deadline) => [
          GROUP,
          consumer,
          maxDeadLetters,
          deadline,
          ...ready.flatMap(([id, request]) => [id, request.deliveries, request.error]),
        ],
        caller.deadline(),
        'write buffer dead-letter',
        this.#where(),
      );
    } catch (error) {
      if (this.forgetIfGroupLost(error)) return;
      throw error;
    }
    this.#context.stats.deadLettered += Number(reply.rest[0]) || 0;
    if (reply.rest[1] === 1) {
      // Full: the ones moved are no longer ours and will be skipped next time; the rest wait, held.
      for (const [, request] of ready) request.dueAt = now + options.retryDelay.max;
      this.#context.report(
        new WriteBufferFullError(this.#context.buffer, 'dead-letters', this.#keys.index, maxDeadLetters),
      );
      return;
    }
    for (const [id] of ready) this.#undead.delete(id);
  }

  /**
   * Renews the hold on every owned entry (`idleMs` 0), or hands them over (`idleMs` =
   * `claimIdle`: the other consumers may take them at once). Entries another consumer took
   * meanwhile are forgotten. Rejects on a Redis failure.
   */
  async hold(idleMs: number): Promise<void> {
    const ids = this.held();
    const { caller, consumer } = this.#context;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const lost = await caller.run(
        'bufferHold',
        [this.#keys.stream],
        [GROUP, consumer, idleMs, ...chunk],
        caller.deadline(),
        'write buffer hold',
        this.#where(),
      );
      if (!Array.isArray(lost)) continue;
      for (const id of lost) {
        if (typeof id !== 'string') continue;
        this.#retries.delete(id);
        this.#undead.delete(id);
      }
    }
  }

  /** When the group is gone, so is everything it had pending: forget it all. Returns whether it was. */
  forgetIfGroupLost(error: unknown): boolean {
    if (!isGroupLost(error)) return false;
    this.#retries.clear();
    this.#unacked.clear();
    this.#undead.clear();
    return true;
  }

  #where(): Record<string, unknown> {
    return { buffer: this.#context.buffer, shard: this.#keys.index, consumer: this.#context.consumer };
  }
}
