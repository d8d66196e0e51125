import { performance } from 'node:perf_hooks';
import { messageOf, toRedisError } from '../common/errors.js';
import type { WorkerContext } from './context.js';
import { decodeEntry, entryTime, parseEntries, type RawEntry } from './entries.js';
import { GROUP, type ShardKeys } from './keys.js';
import type { BufferedItem } from './options.js';
import { type DeadRequest, OwnedEntries } from './owned-entries.js';

const MAX_ERROR_LENGTH = 1_000;

/**
 * One shard of a consumer: reads new entries, retries its failed ones after their backoff,
 * takes over entries other consumers left idle past `claimIdle`, hands batches to `flush`, and
 * has exactly what `flush` committed acknowledged (and deleted). What it owns meanwhile is kept
 * in {@link OwnedEntries}.
 */
export class ShardWorker<T> {
  readonly keys: ShardKeys;
  readonly #context: WorkerContext<T>;
  readonly #owned: OwnedEntries<T>;
  #claimCursor = '0-0';
  #nextClaimAt = 0;
  #nextPruneAt: number;
  #failures = 0;
  /** Resolves when the loop has ended (after a stop, with its last batch settled). */
  readonly done: Promise<void>;

  constructor(keys: ShardKeys, context: WorkerContext<T>) {
    this.keys = keys;
    this.#context = context;
    this.#owned = new OwnedEntries(keys, context);
    this.#nextPruneAt = performance.now() + this.#pruneEvery();
    this.done = this.#run();
  }

  /** The heartbeat: renews the hold on what this shard owns (see {@link OwnedEntries.hold}). Never rejects. */
  async hold(idleMs: number): Promise<void> {
    await this.#owned.hold(idleMs).catch((error: unknown) => this.#fail('write buffer hold', error));
  }

  /** After the loop: one last try at pending acknowledgements, then hands everything over and leaves the group if nothing is pending. */
  async finish(): Promise<void> {
    await this.#owned.acknowledge().catch((error: unknown) => this.#fail('write buffer ack', error));
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
    await this.#owned.acknowledge();
    await this.#owned.deadLetter();
    const batch: RawEntry[] = [];
    const due = this.#owned.dueRetries(batchSize);
    if (due.length) batch.push(...(await this.#retry(due)));
    if (batch.length < batchSize && performance.now() >= this.#nextClaimAt) {
      batch.push(...(await this.#claim(batchSize - batch.length)));
    }
    let more = false;
    // A failing sink is not fed more: while a batch's worth waits for a retry, nothing new is read.
    if (batch.length < batchSize && this.#owned.retrying < batchSize && !this.#context.stopping()) {
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
      this.#where(),
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
      this.#where(),
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
      this.#where(),
    );
    const entries = this.#entries(reply.rest[0], 2);
    // What did not come back is gone: acknowledged elsewhere, or taken by another consumer.
    const back = new Set(entries.map((entry) => entry.entryId));
    for (const id of ids) if (!back.has(id)) this.#owned.takeRetry(id);
    return entries;
  }

  #entries(value: unknown, defaultDeliveries: number): RawEntry[] {
    const { entries, skipped } = parseEntries(value, defaultDeliveries);
    if (skipped) {
      const error = new Error(`${skipped} malformed stream entries skipped`);
      this.#context.report(toRedisError('write buffer read', error, this.#where()));
    }
    return entries;
  }

  async #process(batch: RawEntry[]): Promise<void> {
    const { options, stats } = this.#context;
    const items: BufferedItem<T>[] = [];
    const entriesOf = new Map<string, RawEntry[]>();
    const dead = new Map<string, DeadRequest>();
    for (const entry of batch) {
      const lastError = this.#owned.takeRetry(entry.entryId);
      // Claimed back after its acknowledgement or dead-lettering failed: finish that, do not redo it.
      if (this.#owned.settling(entry.entryId)) continue;
      if (entry.deliveries > options.maxAttempts) {
        const error =
          lastError ??
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
      for (const entries of entriesOf.values()) for (const entry of entries) this.#owned.inFlight.add(entry.entryId);
      const failures = await this.#flush(items);
      this.#owned.inFlight.clear();
      const committed: string[] = [];
      for (const [id, entries] of entriesOf) {
        const error = failures.get(id);
        for (const entry of entries) {
          if (error === undefined) committed.push(entry.entryId);
          else if (entry.deliveries >= options.maxAttempts) {
            dead.set(entry.entryId, { deliveries: entry.deliveries, error, dueAt: 0 });
          } else this.#owned.retryLater(entry.entryId, entry.deliveries, error);
        }
      }
      stats.committed += committed.length;
      stats.failed += items.length - committed.length;
      this.#owned.committed(committed);
      await this.#owned.acknowledge().catch((error: unknown) => this.#fail('write buffer ack', error));
    }
    if (dead.size) {
      for (const [id, request] of dead) this.#owned.condemn(id, request);
      await this.#owned.deadLetter().catch((error: unknown) => this.#fail('write buffer dead-letter', error));
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

  async #prune(self: string): Promise<void> {
    const { caller, options } = this.#context;
    try {
      await caller.run(
        'bufferPrune',
        [this.keys.stream],
        [GROUP, options.pruneIdle, self],
        caller.deadline(),
        'write buffer prune',
        this.#where(),
      );
    } catch (error) {
      this.#fail('write buffer prune', error);
    }
  }

  #pruneEvery(): number {
    return Math.min(this.#context.options.pruneIdle, 300_000) * (0.5 + Math.random() / 2);
  }

  #fail(operation: string, error: unknown): void {
    if (this.#owned.forgetIfGroupLost(error)) {
      this.#claimCursor = '0-0';
      return;
    }
    this.#context.stats.redisErrors++;
    this.#context.report(toRedisError(operation, error, this.#where()));
  }

  #where(): Record<string, unknown> {
    return { buffer: this.#context.buffer, shard: this.keys.index, consumer: this.#context.consumer };
  }
}

function errorText(error: unknown): string {
  const text = messageOf(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}
