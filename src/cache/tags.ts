import { multiKeyGroups } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { runScript, type ScriptName } from '../scripts/registry.js';

/**
 * Tag versions. A tag's version is a number (server time in µs) that only grows; an entry
 * records the versions of its tags when its load starts, and is stale once any of them has
 * grown. Invalidating a tag is one command per hash slot, however many entries carry it.
 *
 * Versions are remembered in this process while the invalidation bus is connected (it delivers
 * every change), so a cache hit costs no extra round trip; without the bus they are read from
 * Redis each time.
 */
export class TagVersions {
  readonly #redis: RedisLike;
  readonly #prefix: string;
  readonly #known = new Map<string, number>();
  #remember = false;

  constructor(redis: RedisLike, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  /** The key holding a tag's version. */
  keyOf(tag: string): string {
    return `${this.#prefix}:ct:${tag}`;
  }

  /** Versions known in this process (only while the bus is connected). */
  get known(): ReadonlyMap<string, number> {
    return this.#known;
  }

  /** Starts or stops remembering versions; stopping forgets them (missed messages must not linger). */
  remember(on: boolean): void {
    this.#remember = on;
    if (!on) this.#known.clear();
  }

  /**
   * Current versions of `tags`. With `fromRedis` (before a load) they are read from Redis, which
   * also creates missing tags and keeps them alive for `lifetimeMs`; otherwise remembered
   * versions are used and only unknown tags are read.
   */
  async current(tags: readonly string[], lifetimeMs: number, fromRedis: boolean): Promise<ReadonlyMap<string, number>> {
    const missing = fromRedis || !this.#remember ? tags : tags.filter((tag) => !this.#known.has(tag));
    const fetched = missing.length ? await this.#run('cacheTags', missing, lifetimeMs) : undefined;
    for (const [tag, version] of fetched ?? []) this.#learn(tag, version);
    // A snapshot of exactly these tags: an entry records them as they were when its load began.
    const versions = new Map<string, number>();
    for (const tag of tags) {
      const version = fetched?.get(tag) ?? this.#known.get(tag);
      if (version !== undefined) versions.set(tag, version);
    }
    return versions;
  }

  /** Moves `tags` to new versions in Redis; resolves the new versions. */
  async invalidate(tags: readonly string[], lifetimeMs: number): Promise<Map<string, number>> {
    const versions = await this.#run('cacheInvalidateTags', tags, lifetimeMs);
    for (const [tag, version] of versions) this.#learn(tag, version);
    return versions;
  }

  /** Applies versions another instance announced on the bus. */
  learn(versions: Record<string, number>): void {
    for (const tag in versions) this.#learn(tag, versions[tag] as number);
  }

  #learn(tag: string, version: number): void {
    // Versions only grow: a late reply must not undo a newer announcement.
    if (!this.#remember) return;
    const known = this.#known.get(tag);
    if (known === undefined || version > known) this.#known.set(tag, version);
  }

  async #run(script: ScriptName, tags: readonly string[], lifetimeMs: number): Promise<Map<string, number>> {
    const byKey = new Map(tags.map((tag) => [this.keyOf(tag), tag]));
    const groups = multiKeyGroups(this.#redis, byKey.keys());
    const replies = await Promise.all(
      groups.map(
        (keys) => runScript(this.#redis, script, keys, [Math.max(1, Math.ceil(lifetimeMs))]) as Promise<number[]>,
      ),
    );
    const versions = new Map<string, number>();
    groups.forEach((keys, group) => {
      keys.forEach((key, i) => {
        versions.set(byKey.get(key) as string, Number(replies[group]?.[i]));
      });
    });
    return versions;
  }
}
