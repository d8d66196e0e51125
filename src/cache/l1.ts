import { LRUCache } from 'lru-cache';
import type { Coherence, Snapshot } from './coherence.js';
import type { StandardSchemaV1 } from './schema.js';

/** A decoded entry, as L1 keeps it and reads return it. */
export interface Entry {
  kind: 'value' | 'error';
  /**
   * The value as every instance reads it — the serializer's round trip, never the loader's own
   * object — or, for a cached loader error, its message.
   */
  value: unknown;
  freshUntil: number;
  staleUntil: number;
  loadMs: number;
  tags: Record<string, number> | undefined;
  /** The last schema the value passed, and what it gave (so an L1 hit does not validate again). */
  checked?: { schema: StandardSchemaV1; value: unknown };
}

/**
 * The in-process LRU in front of Redis. It is used only while the bus delivers
 * ({@link Coherence.live}), and an entry goes in only if nothing could have invalidated it since
 * the operation that produced it started ({@link Coherence.mayFill}): neither a message nor a gap
 * in delivery. So L1 holds what any other instance would read, at most the bus latency late (or,
 * when delivery silently stops, at most two heartbeats late).
 */
export class L1 {
  readonly #lru: LRUCache<string, Entry>;
  readonly #ttlLimit: number | undefined;
  readonly #coherence: Coherence;

  constructor(maxEntries: number, ttlLimit: number | undefined, coherence: Coherence) {
    this.#lru = new LRUCache<string, Entry>({ max: maxEntries });
    this.#ttlLimit = ttlLimit;
    this.#coherence = coherence;
  }

  /** The entry of `key`, while the bus delivers. */
  get(key: string): Entry | undefined {
    return this.#coherence.live ? this.#lru.get(key) : undefined;
  }

  /** Keeps an entry, if the operation that produced it (started at `since`) may still be trusted. */
  fill(key: string, entry: Entry, since: Snapshot, now: number): void {
    if (!this.#coherence.mayFill(key, since)) return;
    const ttl = Math.min(entry.staleUntil - now, this.#ttlLimit ?? Number.POSITIVE_INFINITY);
    if (ttl > 0) this.#lru.set(key, entry, { ttl: Math.ceil(ttl) });
  }

  /** Drops keys. */
  drop(keys: Iterable<string>): void {
    for (const key of keys) this.#lru.delete(key);
  }

  /** Drops the keys `matches` accepts. */
  dropMatching(matches: (key: string) => boolean): void {
    for (const key of [...this.#lru.keys()]) if (matches(key)) this.#lru.delete(key);
  }

  /** Drops everything. */
  clear(): void {
    this.#lru.clear();
  }
}
