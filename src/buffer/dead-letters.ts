import type { Serializer } from '../cache/options.js';
import { type StandardSchemaV1, validate } from '../cache/schema.js';
import type { RedisLike } from '../client/types.js';
import { withTimeout } from '../common/deadline.js';
import { InvalidOptionError } from '../common/errors.js';
import type { ScriptCaller } from './calls.js';
import { entryTime, isEntryId, MAX_ID_LENGTH, parseEntries } from './entries.js';
import { GROUP, type ShardKeys } from './keys.js';

/** An item that was moved to the dead letters, with why. */
export interface DeadLetter<T> {
  /** Names this dead letter for `replayDeadLetters` and `deleteDeadLetters`: `<shard>:<entry id>`. */
  deadLetterId: string;
  /** The item's id, as `flush` saw it; undefined for an entry that was not an item. */
  id: string | undefined;
  /** The item, when it can be read back (undefined for a malformed one: see `raw`). */
  item: T | undefined;
  /** The stored payload; for an entry that was not an item, its fields as a JSON array. */
  raw: string;
  /** The last error: what `flush` threw or reported, or why the entry could not be delivered. */
  error: string;
  /** Deliveries it had when it was moved. */
  attempts: number;
  /** When it was moved (server time). */
  failedAt: Date;
  /** The shard it came from. */
  shard: number;
}

/** Options of `deadLetters()`. */
export interface DeadLettersOptions {
  /** Most dead letters to return, oldest first. Default `100` (at most 10,000). */
  limit?: number;
}

/** Options of `replayDeadLetters()`. */
export interface ReplayOptions {
  /** The dead letters to replay (their `deadLetterId`); default: the oldest ones. */
  ids?: readonly string[];
  /** Most dead letters to replay. Default `1000`. */
  limit?: number;
}

/** What `replayDeadLetters()` did. */
export interface ReplayResult {
  /** Dead letters moved back into the buffer, as new entries with the same item id. */
  replayed: number;
  /** Whether it stopped early because the buffer's backlog was full. */
  full: boolean;
}

/** Reads, replays and deletes the dead letters of every shard. */
export class DeadLetters<T> {
  readonly #redis: RedisLike;
  readonly #shards: ShardKeys[];
  readonly #caller: ScriptCaller;
  readonly #serializer: Serializer;
  readonly #schema: StandardSchemaV1<unknown, T> | undefined;
  readonly #buffer: string;

  constructor(
    redis: RedisLike,
    buffer: string,
    shards: ShardKeys[],
    caller: ScriptCaller,
    serializer: Serializer,
    schema: StandardSchemaV1<unknown, T> | undefined,
  ) {
    this.#redis = redis;
    this.#buffer = buffer;
    this.#shards = shards;
    this.#caller = caller;
    this.#serializer = serializer;
    this.#schema = schema;
  }

  /** The oldest dead letters across shards, oldest first. */
  async list(limit: number): Promise<DeadLetter<T>[]> {
    const perShard = await Promise.all(
      this.#shards.map(async (shard) => {
        const reply = await withTimeout(
          this.#redis.xrange(shard.deadLetters, '-', '+', 'COUNT', limit),
          this.#caller.timeoutMs,
          'write buffer dead letters',
          { buffer: this.#buffer, shard: shard.index },
        );
        const { entries } = parseEntries(reply);
        return Promise.all(entries.map((entry) => this.#decode(shard.index, entry.entryId, entry.fields)));
      }),
    );
    return perShard
      .flat()
      .sort((a, b) => a.failedAt.getTime() - b.failedAt.getTime())
      .slice(0, limit);
  }

  /** Moves dead letters back into their shard's stream, as far as its backlog allows. */
  async replay(ids: readonly string[] | undefined, limit: number, maxPerShard: number): Promise<ReplayResult> {
    let replayed = 0;
    let full = false;
    const byShard = ids ? this.#byShard(ids, 'WriteBuffer.replayDeadLetters()') : undefined;
    for (const shard of this.#shards) {
      if (replayed >= limit) break;
      const chosen = byShard?.get(shard.index);
      if (byShard && !chosen) continue;
      for (let i = 0; i < (chosen?.length ?? 1) && replayed < limit; i += 500) {
        const reply = await this.#caller.stamped(
          'bufferReplay',
          [shard.stream, shard.deadLetters],
          (deadline) => [GROUP, maxPerShard, deadline, limit - replayed, ...(chosen?.slice(i, i + 500) ?? [])],
          this.#caller.deadline(),
          'write buffer replay',
          { buffer: this.#buffer, shard: shard.index },
        );
        replayed += Number(reply.rest[0]) || 0;
        if (reply.rest[1] === 1) full = true;
      }
    }
    return { replayed, full };
  }

  /** Deletes dead letters for good. Resolves with how many existed. */
  async delete(ids: readonly string[]): Promise<number> {
    let deleted = 0;
    for (const [index, entryIds] of this.#byShard(ids, 'WriteBuffer.deleteDeadLetters()')) {
      const shard = this.#shards[index] as ShardKeys;
      deleted += await withTimeout(
        this.#redis.xdel(shard.deadLetters, ...entryIds),
        this.#caller.timeoutMs,
        'write buffer delete dead letters',
        { buffer: this.#buffer, shard: index },
      );
    }
    return deleted;
  }

  #byShard(ids: readonly string[], where: string): Map<number, string[]> {
    if (!Array.isArray(ids)) throw new InvalidOptionError('ids', ids, 'an array of deadLetterId strings', where);
    const byShard = new Map<number, string[]>();
    for (const id of ids) {
      const match = typeof id === 'string' ? /^(\d+):(\d+-\d+)$/.exec(id) : null;
      const shard = match ? Number(match[1]) : -1;
      if (!match || shard >= this.#shards.length) {
        throw new InvalidOptionError(
          'ids',
          id,
          `a deadLetterId ("<shard>:<entry id>", shard below ${this.#shards.length})`,
          where,
        );
      }
      const list = byShard.get(shard);
      if (list) list.push(match[2] as string);
      else byShard.set(shard, [match[2] as string]);
    }
    return byShard;
  }

  async #decode(shard: number, entryId: string, fields: readonly string[]): Promise<DeadLetter<T>> {
    const values = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i] as string, fields[i + 1] as string);
    const id = values.get('i');
    const payload = values.get('d');
    const attempts = Number(values.get('n'));
    const failedAt = Number(values.get('t'));
    return {
      deadLetterId: `${shard}:${entryId}`,
      id: id !== undefined && id.length > 0 && id.length <= MAX_ID_LENGTH ? id : undefined,
      item: payload === undefined ? undefined : await this.#item(payload),
      raw: payload ?? values.get('x') ?? JSON.stringify(fields),
      error: values.get('e') ?? '',
      attempts: Number.isInteger(attempts) && attempts >= 0 ? attempts : 0,
      failedAt: new Date(Number.isFinite(failedAt) ? failedAt : isEntryId(entryId) ? entryTime(entryId) : 0),
      shard,
    };
  }

  async #item(payload: string): Promise<T | undefined> {
    try {
      const value = this.#serializer.deserialize(payload);
      if (!this.#schema) return value as T;
      const checked = await validate(this.#schema, value);
      return checked.ok ? checked.value : undefined;
    } catch {
      return undefined;
    }
  }
}
