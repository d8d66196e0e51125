import { LRUCache } from 'lru-cache';
import { multiKeyGroups } from '../client/cluster.js';
import { runScript, type ScriptName } from '../scripts/registry.js';
import type { Coherence, Snapshot } from './coherence.js';
import type { Budget, RedisGate } from './gate.js';

/**
 * Tag versions. A tag's version is a number (server time in µs) that only grows; an entry
 * records the versions of its tags when its load starts, and is stale once any of them has
 * grown. Invalidating a tag is one command per hash slot, however many entries carry it.
 *
 * While the invalidation bus delivers, versions are remembered in this process (a bounded LRU:
 * a forgotten tag is simply read again), so a hit on a tagged entry costs no extra round trip.
 * What is remembered is only ever what the bus announced or what an operation read within one
 * bus generation (see {@link Coherence}): a reply that straddles a gap in delivery is not kept.
 */
export class TagVersions {
  readonly #gate: RedisGate;
  readonly #prefix: string;
  readonly #coherence: Coherence;
  readonly #known: LRUCache<string, number>;
  /** Tags forgotten to make room: a read that started before one may not teach it back. */
  #evictions = 0;

  constructor(gate: RedisGate, prefix: string, coherence: Coherence, maxRemembered: number) {
    this.#gate = gate;
    this.#prefix = prefix;
    this.#coherence = coherence;
    this.#known = new LRUCache<string, number>({
      max: maxRemembered,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.#evictions++;
      },
    });
  }

  /** The key holding a tag's version. */
  keyOf(tag: string): string {
    return `${this.#prefix}:ct:${tag}`;
  }

  /** How many tag versions are remembered now. */
  get size(): number {
    return this.#known.size;
  }

  /** The remembered version of `tag`, if the bus delivers and it is remembered. */
  versionOf(tag: string): number | undefined {
    return this.#coherence.live ? this.#known.get(tag) : undefined;
  }

  /** Forgets every version (the bus dropped: announcements may have been missed). */
  forget(): void {
    this.#known.clear();
  }

  /**
   * Current versions of `tags`. With `fromRedis` (before a load) they are read from Redis, which
   * also creates missing tags and keeps them alive for `lifetimeMs`; otherwise remembered
   * versions are used and only the others are read.
   */
  async current(
    tags: readonly string[],
    lifetimeMs: number,
    fromRedis: boolean,
    budget: Budget,
    since: Snapshot,
  ): Promise<ReadonlyMap<string, number>> {
    const versions = new Map<string, number>();
    const missing: string[] = [];
    for (const tag of tags) {
      const known = fromRedis ? undefined : this.versionOf(tag);
      if (known === undefined) missing.push(tag);
      else versions.set(tag, known);
    }
    if (missing.length === 0) return versions;
    const evictions = this.#evictions;
    const fetched = await this.#run('cacheTags', 'cache tags', missing, lifetimeMs, budget);
    this.#learnFetched(fetched, since, evictions);
    for (const [tag, version] of fetched) versions.set(tag, version);
    return versions;
  }

  /**
   * Versions of tags chosen after a load that started at local time `startedAt`
   * (`performance.now()`): resolves undefined when any of them may have been invalidated since
   * (its version is newer than the load's start on its node's clock), so the value is not stored.
   */
  async since(
    tags: readonly string[],
    lifetimeMs: number,
    startedAt: number,
    budget: Budget,
  ): Promise<ReadonlyMap<string, number> | undefined> {
    const gate = this.#gate;
    const byKey = new Map(tags.map((tag) => [this.keyOf(tag), tag]));
    const lifetime = Math.max(1, Math.ceil(lifetimeMs));
    const versions = new Map<string, number>();
    let doubt = false;
    await Promise.all(
      multiKeyGroups(gate.redis, byKey.keys()).map(async (keys) => {
        const node = gate.nodeOf(keys[0] as string);
        const sinceUs = gate.serverTimeAt(node, startedAt) * 1000;
        const reply = (await gate.call('cache tags since', node, budget, () =>
          runScript(gate.redis, 'cacheTagsSince', keys, [lifetime, sinceUs]),
        )) as unknown[];
        gate.learn(node, Number(reply[0]));
        keys.forEach((key, i) => {
          const version = Number(reply[i + 1]);
          if (!Number.isFinite(version) || version < 0) doubt = true;
          else versions.set(byKey.get(key) as string, version);
        });
      }),
    );
    return doubt ? undefined : versions;
  }

  /** Moves `tags` to new versions in Redis; resolves the new versions. */
  async invalidate(
    tags: readonly string[],
    lifetimeMs: number,
    budget: Budget,
    since: Snapshot,
  ): Promise<Map<string, number>> {
    const evictions = this.#evictions;
    const versions = await this.#run('cacheInvalidateTags', 'cache invalidate tags', tags, lifetimeMs, budget);
    this.#learnFetched(versions, since, evictions);
    return versions;
  }

  /** Applies versions another instance announced on the bus. */
  learn(versions: Readonly<Record<string, number>>): void {
    if (!this.#coherence.live) return;
    for (const tag in versions) this.#raise(tag, versions[tag] as number);
  }

  #learnFetched(fetched: ReadonlyMap<string, number>, since: Snapshot, evictionsAtStart: number): void {
    if (!this.#coherence.mayLearn(since)) return;
    const evicted = this.#evictions !== evictionsAtStart;
    for (const [tag, version] of fetched) {
      // A tag forgotten while the read was in flight may have been announced newer meanwhile.
      if (evicted && !this.#known.has(tag)) continue;
      this.#raise(tag, version);
    }
  }

  #raise(tag: string, version: number): void {
    if (version >= Number.MAX_SAFE_INTEGER) return; // a foreign value in a tag key: doubt, never remembered
    // Versions only grow: a late reply must not undo a newer announcement.
    const known = this.#known.get(tag);
    if (known === undefined || version > known) this.#known.set(tag, version);
  }

  async #run(
    script: ScriptName,
    operation: string,
    tags: readonly string[],
    lifetimeMs: number,
    budget: Budget,
  ): Promise<Map<string, number>> {
    const gate = this.#gate;
    const byKey = new Map(tags.map((tag) => [this.keyOf(tag), tag]));
    const groups = multiKeyGroups(gate.redis, byKey.keys());
    const lifetime = Math.max(1, Math.ceil(lifetimeMs));
    const replies = await Promise.all(
      groups.map(
        (keys) =>
          gate.call(operation, gate.nodeOf(keys[0] as string), budget, () =>
            runScript(gate.redis, script, keys, [lifetime]),
          ) as Promise<unknown[]>,
      ),
    );
    const versions = new Map<string, number>();
    groups.forEach((keys, group) => {
      keys.forEach((key, i) => {
        const version = Number(replies[group]?.[i]);
        // A tag key overwritten by something else reads as NaN: doubt, i.e. newer than anything.
        versions.set(byKey.get(key) as string, Number.isFinite(version) ? version : Number.MAX_SAFE_INTEGER);
      });
    });
    return versions;
  }
}

/** Whether every tag the entry was written under is still at that version (`versionOf` gives the current). */
export function tagsStillValid(
  written: Readonly<Record<string, number>> | undefined,
  versionOf: (tag: string) => number | undefined,
): boolean {
  if (!written) return true;
  for (const tag in written) {
    const now = versionOf(tag);
    // Unknown or newer means invalidated (or evicted and recreated): doubt is a miss.
    if (now === undefined || now > (written[tag] as number)) return false;
  }
  return true;
}
