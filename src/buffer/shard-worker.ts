import { performance } from 'node:perf_hooks';
import type { Serializer } from '../cache/options.js';
import type { StandardSchemaV1 } from '../cache/schema.js';
import { messageOf, type RedscaleError, toRedisError } from '../common/errors.js';
import type { ScriptCaller } from './calls.js';
import { decodeEntry, entryTime, parseEntries, type RawEntry } from './entries.js';
import { WriteBufferFullError } from './errors.js';
import { GROUP, type ShardKeys } from './keys.js';
import type { BufferedItem, FlushHandler, ResolvedConsumerOptions } from './options.js';

/** Counters of one consumer, across its shards. */
export interface ConsumerStats {
  /** Items handed to `flush` (a retry counts again). */
  delivered: number;
  /** Items `flush` committed. */
  committed: number;
  /** Items whose flush failed (each is retried or dead-lettered). */
  failed: number;
  /** Items moved to the dead letters (failed `maxAttempts` times, or malformed). */
  deadLettered: number;
  /** Items taken over from consumers that stopped or stalled. */
  claimed: number;
  /** Redis calls that failed (each is retried; none loses an item). */
  redisErrors: number;
}

/** What every shard worker of one consumer shares. */
export interface WorkerContext<T> {
  buffer: string;
  consumer: string;
  caller: ScriptCaller;
  options: ResolvedConsumerOptions;
  serializer: Serializer;
  schema: StandardSchemaV1<unknown, T> | undefined;
  /** Dead letters one shard may hold. */
  maxDeadLetters: number;
  flush: FlushHandler<T>;
  stats: ConsumerStats;
  report(error: RedscaleError): void;
  /** Aborted when `stop()` gave up waiting for flushes. */
  signal: AbortSignal;
  stopping(): boolean;
  /** Sleeps, waking early when the consumer stops. */
  sleep(ms: number): Promise<void>;
}

interface Retry {
  dueAt: number;
  error: string;
}

interface DeadRequest {
  deliveries: number;
  error: string;
  /** When the move may be tried again (after a full dead-letter stream). */
  dueAt: number;
}

const CHUNK = 500;
const MAX_ERROR_LENGTH = 1_000;

/**
 * One shard of a consumer: reads new entries, retries its failed ones after their backoff,
 * takes over entries other consumers left idle past `claimIdle`, hands batches to `flush`, and
 * acknowledges (and deletes) exactly what `flush` committed. Every entry it owns is tracked in
 * one of four places until it leaves the group: in flight, waiting for a retry, committed but
 * not yet acknowledged, or waiting to be dead-lettered; the heartbeat holds all of them.
 */
export class ShardWorker<T> {
  readonly keys: ShardKeys;
  readonly #context: WorkerContext<T>;
  readonly #inFlight = new Set<string>();
  readonly #retries = new Map<string, Retry>();
  readonly #unacked = new Set<string>();
  readonly #undead = new Map<string, DeadRequest>();
  #claimCursor = '0-0';
  #nextClaimAt = 0;
  #nextPruneAt: number;
  #failures = 0;
  /** Resolves when the loop has ended (after a stop, with its last batch settled). */
  readonly done: Promise<void>;

  constructor(keys: ShardKeys, context: WorkerContext<T>) {
    this.keys = keys;
    this.#context = context;
    this.#nextPruneAt = performance.now() + this.#pruneEvery();
    this.done = this.#run();
  }

  /** The entries this worker owns and must keep from being taken over. */
  held(): string[] {
    return [...this.#inFlight, ...this.#retries.keys(), ...this.#unacked, ...this.#undead.keys()];
  }

  /**
   * Renews this worker's hold on its entries (`idleMs` 0), or hands them over (`idleMs` =
   * `claimIdle`: the other consumers may take them at once). Entries it turns out to have lost
   * to another consumer are forgotten.
   */
  async hold(idleMs: number): Promise<void> {
    const ids = this.held();
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      try {
        const lost = await this.#context.caller.run(
          'bufferHold',
          [this.keys.stream],
          [GROUP, this.#context.consumer, idleMs, ...chunk],
          this.#context.caller.deadline(),
          'write buffer hold',
          this.#errorContext(),
        );
        if (Array.isArray(lost)) {
          for (const id of lost) {
            if (typeof id !== 'string') continue;
            this.#retries.delete(id);
            this.#undead.delete(id);
          }
        }
      } catch (error) {
        this.#fail('write buffer hold', error);
      }
    }
  }

  /** After the loop: one last try at pending acknowledgements, then hands everything over and leaves the group if nothing is pending. */
  async finish(): Promise<void> {
    await this.#settleAcks().catch((error: unknown) => this.#fail('write buffer ack', error));
    await this.hold(this.#context.options.claimIdle);
    await this.#prune(this.#context.consumer);
  }

  async #run(): Promise<void> {
    const { options, sleep, stopping } = this.#context;
    while (!stopping()) {
      let again = false;
      try {
        again = await this.#cycle();
        // Back from an outage: every entry in the group looks idle now. Let their owners renew
        // their holds and send their acknowledgements before taking anything over.
        if (this.#failures > 0) this.#nextClaimAt = performance.now() + options.claimIdle / 2;
        this.#failures = 0;
      } catch (error) {
        this.#fail('write buffer consume', error);
        this.#failures++;
      }
      if (stopping()) break;
      if (!again) {
        // Back off while Redis fails, so a dead Redis is not polled flat out; but never longer
        // than a quarter of claimIdle, so once Redis is back this consumer acknowledges what it
        // committed before the others may take it over.
        const cap = Math.min(2_000, options.claimIdle / 4);
        const delay =
          this.#failures === 0
            ? options.flushInterval
            : Math.min(cap, options.flushInterval * 2 ** Math.min(this.#failures - 1, 10));
        await sleep(delay);
      }
    }
  }

  /** One round. Resolves true when there is probably more to read at once. */
  async #cycle(): Promise<boolean> {
    const { batchSize } = this.#context.options;
    await this.#settleAcks();
    await this.#settleDeadLetters();
    const batch: RawEntry[] = [];
    const due = this.#dueRetries(batchSize);
    if (due.length) batch.push(...(await this.#retry(due)));
    if (batch.length < batchSize && performance.now() >= this.#nextClaimAt) {
      batch.push(...(await this.#claim(batchSize - batch.length)));
    }
    let more = false;
    // A failing sink is not fed more: while a batch's worth waits for a retry, nothing new is read.
    if (batch.length < batchSize && this.#retries.size < batchSize && !this.#context.stopping()) {
      const want = batchSize - batch.length;
      const read = await this.#read(want);
      batch.push(...read);
      more = read.length === want;
    }
    if (batch.length) await this.#process(batch);
    if (performance.now() >= this.#nextPruneAt) {
      this.#nextPruneAt = performance.now() + this.#pruneEvery();
      await this.#prune('');
    }
    return more;
  }

  async #read(count: number): Promise<RawEntry[]> {
    const { caller, consumer } = this.#context;
    const reply = await caller.stamped(
      'bufferRead',
      [this.keys.stream],
      (deadline) => [GROUP, consumer, count, deadline],
      caller.deadline(),
      'write buffer read',
      this.#errorContext(),
    );
    return this.#entries(reply.rest[0], 1);
  }

  async #claim(count: number): Promise<RawEntry[]> {
    const { caller, consumer, options } = this.#context;
    const reply = await caller.stamped(
      'bufferClaim',
      [this.keys.stream],
      (deadline) => [GROUP, consumer, options.claimIdle, this.#claimCursor, count, deadline],
      caller.deadline(),
      'write buffer claim',
      this.#errorContext(),
    );
    const cursor = reply.rest[0];
    this.#claimCursor = typeof cursor === 'string' && /^\d+-\d+$/.test(cursor) ? cursor : '0-0';
    // A full scan done: look again in half the idle time. Otherwise continue next round.
    if (this.#claimCursor === '0-0') this.#nextClaimAt = performance.now() + options.claimIdle / 2;
    const entries = this.#entries(reply.rest[1], 2);
    this.#context.stats.claimed += entries.length;
    return entries;
  }

  async #retry(ids: string[]): Promise<RawEntry[]> {
    const { caller, consumer } = this.#context;
    const reply = await caller.stamped(
      'bufferRetry',
      [this.keys.stream],
      (deadline) => [GROUP, consumer, deadline, ...ids],
      caller.deadline(),
      'write buffer retry',
      this.#errorContext(),
    );
    const entries = this.#entries(reply.rest[0], 2);
    // What did not come back is gone: acknowledged elsewhere, or taken by another consumer.
    const back = new Set(entries.map((entry) => entry.entryId));
    for (const id of ids) if (!back.has(id)) this.#retries.delete(id);
    return entries;
  }

  #entries(value: unknown, defaultDeliveries: number): RawEntry[] {
    const { entries, skipped } = parseEntries(value, defaultDeliveries);
    if (skipped) {
      this.#context.report(
        toRedisError(
          'write buffer read',
          new Error(`${skipped} malformed stream entries skipped`),
          this.#errorContext(),
        ),
      );
    }
    return entries;
  }

  #dueRetries(limit: number): string[] {
    const now = performance.now();
    const due: string[] = [];
    for (const [id, retry] of this.#retries) {
      if (retry.dueAt <= now) due.push(id);
      if (due.length >= limit) break;
    }
    return due;
  }

  async #process(batch: RawEntry[]): Promise<void> {
    const { options, stats } = this.#context;
    const items: BufferedItem<T>[] = [];
    const entriesOf = new Map<string, RawEntry[]>();
    const dead = new Map<string, DeadRequest>();
    for (const entry of batch) {
      const previous = this.#retries.get(entry.entryId);
      this.#retries.delete(entry.entryId);
      // Claimed back after its acknowledgement or dead-lettering failed: finish that, do not redo it.
      if (this.#unacked.has(entry.entryId) || this.#undead.has(entry.entryId)) continue;
      if (entry.deliveries > options.maxAttempts) {
        const error =
          previous?.error ??
          `not acknowledged after ${entry.deliveries - 1} deliveries: the consumers holding it stopped or stalled`;
        dead.set(entry.entryId, { deliveries: entry.deliveries - 1, error, dueAt: 0 });
        continue;
      }
      const decoded = await decodeEntry(entry.fields, this.#context.serializer, this.#context.schema);
      if (!decoded.ok) {
        dead.set(entry.entryId, {
          deliveries: entry.deliveries,
          error: `malformed entry: ${decoded.reason}`,
          dueAt: 0,
        });
        continue;
      }
      items.push({
        id: decoded.id,
        item: decoded.item,
        attempt: entry.deliveries,
        enqueuedAt: new Date(entryTime(entry.entryId)),
        shard: this.keys.index,
      });
      const same = entriesOf.get(decoded.id);
      if (same) same.push(entry);
      else entriesOf.set(decoded.id, [entry]);
    }
    if (items.length) {
      stats.delivered += items.length;
      for (const entries of entriesOf.values()) for (const entry of entries) this.#inFlight.add(entry.entryId);
      const failures = await this.#flush(items);
      this.#inFlight.clear();
      const committed: string[] = [];
      for (const [id, entries] of entriesOf) {
        const error = failures.get(id);
        for (const entry of entries) {
          if (error === undefined) committed.push(entry.entryId);
          else if (entry.deliveries >= options.maxAttempts) {
            dead.set(entry.entryId, { deliveries: entry.deliveries, error, dueAt: 0 });
          } else {
            this.#retries.set(entry.entryId, { dueAt: performance.now() + this.#backoff(entry.deliveries), error });
          }
        }
      }
      stats.committed += committed.length;
      stats.failed += items.length - committed.length;
      for (const id of committed) this.#unacked.add(id);
      await this.#settleAcks().catch((error: unknown) => this.#fail('write buffer ack', error));
    }
    if (dead.size) {
      for (const [id, request] of dead) this.#undead.set(id, request);
      await this.#settleDeadLetters().catch((error: unknown) => this.#fail('write buffer dead-letter', error));
    }
  }

  /** Calls the user's flush. Resolves with the failed item ids and their error messages. */
  async #flush(items: BufferedItem<T>[]): Promise<Map<string, string>> {
    const failures = new Map<string, string>();
    const failAll = (message: string) => {
      for (const item of items) failures.set(item.id, message);
      return failures;
    };
    let result: unknown;
    try {
      result = await this.#context.flush(items, { signal: this.#context.signal, shard: this.keys.index });
    } catch (error) {
      return failAll(errorText(error));
    }
    if (result === undefined || result === null) return failures;
    const failed = (result as { failed?: unknown }).failed;
    if (typeof result !== 'object' || (failed !== undefined && !Array.isArray(failed))) {
      return failAll('flush returned something other than undefined or { failed: [{ id, error }] }');
    }
    for (const entry of (failed ?? []) as unknown[]) {
      const id = (entry as { id?: unknown } | null)?.id;
      if (typeof id !== 'string') return failAll('flush returned a failed entry without a string id');
      failures.set(id, errorText((entry as { error?: unknown }).error ?? 'flush reported the item as failed'));
    }
    return failures;
  }

  async #settleAcks(): Promise<void> {
    const ids = [...this.#unacked];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      const { caller } = this.#context;
      try {
        await caller.run(
          'bufferAck',
          [this.keys.stream],
          [GROUP, ...chunk],
          caller.deadline(),
          'write buffer ack',
          this.#errorContext(),
        );
      } catch (error) {
        if (this.#groupLost(error)) return;
        throw error;
      }
      for (const id of chunk) this.#unacked.delete(id);
    }
  }

  async #settleDeadLetters(): Promise<void> {
    const now = performance.now();
    const ready = [...this.#undead].filter(([, request]) => request.dueAt <= now).slice(0, CHUNK);
    if (!ready.length) return;
    const { caller, consumer, maxDeadLetters, options } = this.#context;
    let reply: Awaited<ReturnType<ScriptCaller['stamped']>>;
    try {
      reply = await caller.stamped(
        'bufferDeadLetter',
        [this.keys.stream, this.keys.deadLetters],
        (deadline) => [
          GROUP,
          consumer,
          maxDeadLetters,
          deadline,
          ...ready.flatMap(([id, request]) => [id, request.deliveries, request.error]),
        ],
        caller.deadline(),
        'write buffer dead-letter',
        this.#errorContext(),
      );
    } catch (error) {
      if (this.#groupLost(error)) return;
      throw error;
    }
    const moved = Number(reply.rest[0]) || 0;
    this.#context.stats.deadLettered += moved;
    if (reply.rest[1] === 1) {
      // Full: the ones moved are no longer ours and will be skipped; the rest wait here, held.
      for (const [, request] of ready) request.dueAt = now + options.retryDelay.max;
      this.#context.report(
        new WriteBufferFullError(this.#context.buffer, 'dead-letters', this.keys.index, maxDeadLetters),
      );
      return;
    }
    for (const [id] of ready) this.#undead.delete(id);
  }

  async #prune(self: string): Promise<void> {
    const { caller, options } = this.#context;
    try {
      await caller.run(
        'bufferPrune',
        [this.keys.stream],
        [GROUP, options.pruneIdle, self],
        caller.deadline(),
        'write buffer prune',
        this.#errorContext(),
      );
    } catch (error) {
      this.#fail('write buffer prune', error);
    }
  }

  #backoff(deliveries: number): number {
    const { min, max } = this.#context.options.retryDelay;
    const ceiling = Math.min(max, min * 2 ** Math.min(deliveries - 1, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  #pruneEvery(): number {
    return Math.min(this.#context.options.pruneIdle, 300_000) * (0.5 + Math.random() / 2);
  }

  /**
   * The group is gone (Redis lost its data, or someone destroyed it): so is everything it had
   * pending, including what this worker tracks. The next read creates the group again.
   */
  #groupLost(error: unknown): boolean {
    if (!/NOGROUP/.test(messageOf(error)) && !/NOGROUP/.test(messageOf((error as { cause?: unknown }).cause))) {
      return false;
    }
    this.#retries.clear();
    this.#unacked.clear();
    this.#undead.clear();
    this.#claimCursor = '0-0';
    return true;
  }

  #fail(operation: string, error: unknown): void {
    if (this.#groupLost(error)) return;
    this.#context.stats.redisErrors++;
    this.#context.report(toRedisError(operation, error, this.#errorContext()));
  }

  #errorContext(): Record<string, unknown> {
    return { buffer: this.#context.buffer, shard: this.keys.index, consumer: this.#context.consumer };
  }
}

function errorText(error: unknown): string {
  const text = messageOf(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}
