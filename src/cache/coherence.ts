/** When an operation started, in the terms of {@link Coherence}. */
export interface Snapshot {
  readonly generation: number;
  readonly epoch: number;
}

/** How many recently invalidated keys are tracked one by one before the oldest count as "all". */
const TRACKED_KEYS = 10_000;

/**
 * What this instance may still trust of what it learned from Redis, given what the invalidation
 * bus has (or may have failed to) tell it.
 *
 * - The **generation** advances whenever delivery may have had a gap: the bus dropped, it came
 *   back, or a heartbeat went missing. Pub/sub is at-most-once, so anything read before a gap may
 *   have been invalidated by a message that never arrived: a tag version or an L1 fill learned by
 *   an operation that started under an older generation is not kept.
 * - The **epoch** advances with every invalidation this instance hears of or makes (per key, or
 *   for every key: a pattern, a gap). A read or write whose key was invalidated after it started
 *   does not fill L1, so a late reply never puts back a value another instance has replaced.
 *
 * Every operation takes a {@link snapshot} when it starts, and asks {@link mayFill} /
 * {@link mayLearn} before it keeps anything.
 */
export class Coherence {
  #generation = 0;
  #epoch = 0;
  #live = false;
  /** Epoch of the last invalidation of every key (a gap, a pattern). */
  #allChangedAt = 0;
  /** Epoch of the last invalidation of each recently invalidated key, oldest first. */
  readonly #keyChangedAt = new Map<string, number>();
  /** Newest epoch among the keys no longer tracked: snapshots older than it doubt every key. */
  #forgottenAt = 0;
  #last: Snapshot = { generation: 0, epoch: 0 };

  /** Whether the bus delivers right now (L1 and remembered tag versions may be used). */
  get live(): boolean {
    return this.#live;
  }

  /** The current generation (advanced by every drop, reconnection and missed heartbeat). */
  get generation(): number {
    return this.#generation;
  }

  /** Where things stand now; an operation takes this when it starts. */
  snapshot(): Snapshot {
    // Snapshots are read-only values: while nothing changes, every operation shares one.
    const last = this.#last;
    if (last.generation === this.#generation && last.epoch === this.#epoch) return last;
    this.#last = { generation: this.#generation, epoch: this.#epoch };
    return this.#last;
  }

  /** The bus is subscribed (again): messages flow from now on, but what came before is in doubt. */
  up(): void {
    this.#generation++;
    this.#live = true;
    this.allChanged();
  }

  /** The bus dropped or missed a heartbeat: messages may be lost from now on. */
  down(): void {
    this.#generation++;
    this.#live = false;
    this.allChanged();
  }

  /** These keys were written, deleted or invalidated (here or elsewhere). */
  keysChanged(keys: Iterable<string>): void {
    for (const key of keys) {
      this.#keyChangedAt.delete(key);
      this.#keyChangedAt.set(key, ++this.#epoch);
    }
    for (const [key, at] of this.#keyChangedAt) {
      if (this.#keyChangedAt.size <= TRACKED_KEYS) break;
      this.#keyChangedAt.delete(key);
      this.#forgottenAt = Math.max(this.#forgottenAt, at);
    }
  }

  /** Every key may have changed (a pattern invalidation, a gap in delivery). */
  allChanged(): void {
    this.#allChangedAt = ++this.#epoch;
  }

  /** Whether a value of `key` read or written by an operation that started at `since` may go into L1. */
  mayFill(key: string, since: Snapshot): boolean {
    if (!this.#live || since.generation !== this.#generation) return false;
    if (this.#allChangedAt > since.epoch || this.#forgottenAt > since.epoch) return false;
    const changedAt = this.#keyChangedAt.get(key);
    return changedAt === undefined || changedAt <= since.epoch;
  }

  /** Whether what an operation that started at `since` read from Redis may be remembered (tag versions). */
  mayLearn(since: Snapshot): boolean {
    return this.#live && since.generation === this.#generation;
  }
}
