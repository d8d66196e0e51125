import { InvalidOptionError, messageOf, RedscaleError } from '../common/errors.js';
import { runScript } from '../scripts/registry.js';
import type { Coherence, Snapshot } from './coherence.js';
import { decodeEnvelope, type Envelope, encodeEnvelope, isNewerFormat, type Stored } from './envelope.js';
import { type FillLocks, headerOf } from './fill-lock.js';
import { Budget, type RedisGate } from './gate.js';
import { type Entry, L1 } from './l1.js';
import type { ResolvedCacheOptions } from './options.js';
import { PayloadCodec, type Prepared } from './payload.js';
import { type StandardSchemaV1, validate } from './schema.js';
import { type TagVersions, tagsStillValid } from './tags.js';

/** What a read found. A miss says what Redis held (`seen`, its header), to take the fill lock against. */
export type ReadResult =
  | { state: 'fresh' | 'stale'; entry: Entry; layer: 'l1' | 'l2' }
  | { state: 'miss'; seen: Buffer | null };

/** How an entry is written. */
export interface WriteSpec {
  ttlMs: number;
  staleForMs: number;
  /** Tag versions read before the value was loaded. */
  tags: ReadonlyMap<string, number> | undefined;
  loadMs: number;
}

export type { Prepared };

/** An entry ready to be stored: its text for Redis, and the entry as every instance will read it. */
export interface Encoded {
  text: Stored;
  entry: Entry;
  /** How long Redis keeps it (ttl + staleFor), ms. */
  pxMs: number;
}

/**
 * Entries in L1 and Redis: encoding, freshness, tag checks, schema checks. Every Redis call goes
 * through the gate (the caller's budget, the node's breaker). A Redis failure rejects with a
 * RedscaleError (the cache decides what the caller gets instead); a bad entry is a miss and is
 * deleted.
 */
export class EntryStore {
  readonly l1: L1 | undefined;
  readonly #options: ResolvedCacheOptions;
  readonly #gate: RedisGate;
  readonly #tags: TagVersions;
  readonly #locks: FillLocks;
  readonly #codec: PayloadCodec;

  constructor(
    options: ResolvedCacheOptions,
    gate: RedisGate,
    tags: TagVersions,
    coherence: Coherence,
    locks: FillLocks,
  ) {
    this.#options = options;
    this.#gate = gate;
    this.#tags = tags;
    this.#locks = locks;
    this.#codec = new PayloadCodec(options.serializer, options.compression);
    this.l1 = options.l1 ? new L1(options.l1.maxEntries, options.l1.ttl, coherence) : undefined;
  }

  /** The gate every Redis call of the cache's entries goes through (the many-key calls of `store-many.ts` too). */
  get gate(): RedisGate {
    return this.#gate;
  }

  /** The Redis key of an entry. */
  keyOf(key: string): string {
    return `${this.#options.prefix}:c:${key}`;
  }

  /** The fill lock key of an entry. */
  lockOf(key: string): string {
    return this.#locks.keyOf(this.keyOf(key), key);
  }

  /**
   * Reads an entry: L1 first (no I/O), then Redis. The hot path: a hit with no schema to check
   * awaits nothing but the GET (every extra await is a promise and a trip through the microtask queue).
   */
  async read(key: string, schema: StandardSchemaV1 | undefined, budget: Budget, since: Snapshot): Promise<ReadResult> {
    if (this.l1) {
      const cached = this.fromL1(key, schema);
      const found = cached instanceof Promise ? await cached : cached;
      if (found) return found;
    }
    return this.judge(key, await this.readText(key, budget), schema, budget, since);
  }

  /**
   * {@link read}, handing what it found to `next` (`undefined` when Redis or the read failed),
   * whose outcome settles the one promise returned: an L1 hit with no schema settles at once, an
   * L2 hit costs the GET's promise and this one, with nothing awaited in between.
   */
  readThen<R>(
    key: string,
    schema: StandardSchemaV1 | undefined,
    budget: Budget,
    since: Snapshot,
    next: (read: ReadResult | undefined) => R | Promise<R>,
  ): Promise<R> {
    if (this.l1) {
      const cached = this.fromL1(key, schema);
      if (cached instanceof Promise) {
        return cached.then(
          (found) => (found ? next(found) : this.#redisThen(key, schema, budget, since, next)),
          () => next(undefined),
        );
      }
      if (cached) {
        try {
          return Promise.resolve(next(cached));
        } catch (error) {
          return Promise.reject(error);
        }
      }
    }
    return this.#redisThen(key, schema, budget, since, next);
  }

  #redisThen<R>(
    key: string,
    schema: StandardSchemaV1 | undefined,
    budget: Budget,
    since: Snapshot,
    next: (read: ReadResult | undefined) => R | Promise<R>,
  ): Promise<R> {
    const gate = this.#gate;
    const redisKey = this.keyOf(key);
    return gate.callThen(
      'cache get',
      gate.nodeOf(redisKey),
      budget,
      () => gate.redis.getBuffer(redisKey),
      (text, error) => {
        if (error) return next(undefined);
        let read: ReadResult | Promise<ReadResult>;
        try {
          read = this.judge(key, text as Buffer | null, schema, budget, since);
        } catch {
          return next(undefined);
        }
        return read instanceof Promise ? read.then(next, () => next(undefined)) : next(read);
      },
    );
  }

  /** The entry in L1, if it holds a usable one (dropping one that is not); a promise only when a schema must check it. */
  fromL1(key: string, schema: StandardSchemaV1 | undefined): ReadResult | undefined | Promise<ReadResult | undefined> {
    const cached = this.l1?.get(key);
    if (!cached) return undefined;
    const now = Date.now();
    if (now < cached.staleUntil && (!cached.tags || tagsStillValid(cached.tags, this.#versionOf))) {
      const checked = this.#checked(cached, schema);
      if (!(checked instanceof Promise)) return this.#fromL1Checked(key, checked, now);
      return checked.then((entry) => this.#fromL1Checked(key, entry, now));
    }
    this.l1?.drop([key]);
    return undefined;
  }

  #fromL1Checked(key: string, entry: Entry | undefined, now: number): ReadResult | undefined {
    if (entry) return { state: now < entry.freshUntil ? 'fresh' : 'stale', entry, layer: 'l1' };
    this.l1?.drop([key]);
    return undefined;
  }

  /** The entry as Redis holds it (one GET, as bytes: a payload may be binary), or null. */
  readText(key: string, budget: Budget): Promise<Buffer | null> {
    const redisKey = this.keyOf(key);
    return this.#gate.call('cache get', this.#gate.nodeOf(redisKey), budget, () =>
      this.#gate.redis.getBuffer(redisKey),
    );
  }

  /** Judges an entry's text as read from Redis (`null`: none), filling L1 with what is good. */
  async evaluate(
    key: string,
    text: Stored | null,
    schema: StandardSchemaV1 | undefined,
    budget: Budget,
    since: Snapshot,
    prefetched?: ReadonlyMap<string, number>,
  ): Promise<ReadResult> {
    return this.judge(key, text, schema, budget, since, prefetched);
  }

  /**
   * {@link evaluate}, synchronous unless it must read tag versions from Redis or run a schema:
   * an L2 hit's common case allocates no promise here.
   */
  judge(
    key: string,
    text: Stored | null,
    schema: StandardSchemaV1 | undefined,
    budget: Budget,
    since: Snapshot,
    prefetched?: ReadonlyMap<string, number>,
  ): ReadResult | Promise<ReadResult> {
    if (text === null) return { state: 'miss', seen: headerOf(null) };
    const envelope = decodeEnvelope(text);
    // A format a newer redscale writes is left for the readers that know it; anything else is corrupt.
    if (!envelope) return isNewerFormat(text) ? { state: 'miss', seen: headerOf(text) } : this.#discard(key, text);
    const now = Date.now();
    if (now >= envelope.staleUntil) return { state: 'miss', seen: headerOf(text) };
    if (envelope.tags && !tagsStillValid(envelope.tags, this.#versionOf)) {
      return this.#judgeTagged(key, text, envelope, schema, budget, since, now, prefetched);
    }
    return this.#decoded(key, text, envelope, schema, since, now);
  }

  /** A tagged entry whose versions this process does not know (or knows to be newer). */
  async #judgeTagged(
    key: string,
    text: Stored,
    envelope: Envelope,
    schema: StandardSchemaV1 | undefined,
    budget: Budget,
    since: Snapshot,
    now: number,
    prefetched: ReadonlyMap<string, number> | undefined,
  ): Promise<ReadResult> {
    const written = envelope.tags as Record<string, number>;
    // Unknown here (or the bus is down): read the versions. Known and newer: invalidated.
    const names = Object.keys(written);
    if (names.every((tag) => this.#tags.versionOf(tag) !== undefined)) return { state: 'miss', seen: headerOf(text) };
    const current = names.every((tag) => prefetched?.has(tag))
      ? (prefetched as ReadonlyMap<string, number>)
      : await this.#tags.current(names, this.#lifetime(), false, budget, since);
    if (!tagsStillValid(written, (tag) => current.get(tag))) return { state: 'miss', seen: headerOf(text) };
    return this.#decoded(key, text, envelope, schema, since, now);
  }

  /** The entry of a decoded envelope whose time and tags are good: its value read, checked, kept in L1. */
  #decoded(
    key: string,
    text: Stored,
    envelope: Envelope,
    schema: StandardSchemaV1 | undefined,
    since: Snapshot,
    now: number,
  ): ReadResult | Promise<ReadResult> {
    let value: unknown = envelope.payload;
    if (envelope.kind === 'value') {
      try {
        value = this.#codec.read(envelope);
      } catch {
        return this.#discard(key, text);
      }
    }
    const decoded: Entry = {
      kind: envelope.kind,
      value,
      freshUntil: envelope.freshUntil,
      staleUntil: envelope.staleUntil,
      loadMs: envelope.loadMs,
      tags: envelope.tags,
    };
    const checked = this.#checked(decoded, schema);
    if (!(checked instanceof Promise)) return this.#found(key, text, decoded, checked, since, now);
    return checked.then((entry) => this.#found(key, text, decoded, entry, since, now));
  }

  #found(
    key: string,
    text: Stored,
    decoded: Entry,
    entry: Entry | undefined,
    since: Snapshot,
    now: number,
  ): ReadResult {
    if (!entry) return this.#discard(key, text);
    // L1 keeps the value as read (another caller may pass another schema, or none).
    this.l1?.fill(key, decoded, since, now);
    return { state: now < entry.freshUntil ? 'fresh' : 'stale', entry, layer: 'l2' };
  }

  /**
   * Serializes a value and reads it back, as every instance will read it.
   * @throws InvalidOptionError for `undefined`; RedscaleError ERR_SERIALIZATION for a value the
   * serializer refuses or cannot read back.
   */
  prepare(key: string, value: unknown): Prepared {
    if (value === undefined) {
      throw new InvalidOptionError('value', value, 'a value other than undefined (store null for "nothing")', 'Cache');
    }
    try {
      return this.#codec.prepare(value);
    } catch (error) {
      const path = error instanceof RedscaleError ? error.context.path : undefined;
      throw new RedscaleError(
        'ERR_SERIALIZATION',
        `redscale: the value for "${key}" cannot be stored: ${messageOf(error)}`,
        {
          cause: error,
          context: { key, ...(path === undefined ? {} : { path }) },
        },
      );
    }
  }

  /** The entry for a prepared value (or, with `kind: 'error'`, for a loader error's message). */
  encode(prepared: Prepared, spec: WriteSpec, kind: 'value' | 'error' = 'value'): Encoded {
    const now = Date.now();
    const jitter = this.#options.ttlJitter;
    const ttlMs = jitter ? Math.max(1, Math.round(spec.ttlMs * (1 + (Math.random() * 2 - 1) * jitter))) : spec.ttlMs;
    const entry: Entry = {
      kind,
      value: prepared.value,
      freshUntil: now + ttlMs,
      staleUntil: now + ttlMs + spec.staleForMs,
      loadMs: Math.round(spec.loadMs),
      tags: spec.tags ? Object.fromEntries(spec.tags) : undefined,
    };
    const text = encodeEnvelope({ ...entry, format: prepared.format, payload: prepared.payload });
    return { text, entry, pxMs: ttlMs + spec.staleForMs };
  }

  /**
   * Stores a value given by the caller (`cache-set`: revokes any in-flight fill of the key),
   * refused by Redis past the budget's deadline. Resolves whether it was stored.
   */
  async set(key: string, encoded: Encoded, budget: Budget): Promise<boolean> {
    const gate = this.#gate;
    const entryKey = this.keyOf(key);
    const node = gate.nodeOf(entryKey);
    const reply = (await gate.call('cache set', node, budget, () =>
      runScript(
        gate.redis,
        'cacheSet',
        [entryKey, this.lockOf(key)],
        [gate.serverDeadline(node, budget), encoded.text, encoded.pxMs],
      ),
    )) as [number, number];
    gate.learn(node, Number(reply[1]));
    return reply[0] === 1;
  }

  /**
   * The entry with its value checked against `schema` (memoised per entry), or undefined when it
   * fails; a promise only when the schema has to run.
   */
  #checked(entry: Entry, schema: StandardSchemaV1 | undefined): Entry | undefined | Promise<Entry | undefined> {
    if (!schema || entry.kind === 'error') return entry;
    if (entry.checked?.schema === schema) return { ...entry, value: entry.checked.value };
    return validate(schema, entry.value).then((result) => {
      if (!result.ok) return undefined;
      entry.checked = { schema, value: result.value };
      return { ...entry, value: result.value };
    });
  }

  /** A remembered tag version (bound once: tag checks run on every hit). */
  readonly #versionOf = (tag: string): number | undefined => this.#tags.versionOf(tag);

  /** How long tag keys must outlive a default entry. */
  #lifetime(): number {
    return this.#options.ttl + this.#options.staleFor;
  }

  /** An entry that cannot be decoded or fails its schema: a miss, and gone from Redis. */
  #discard(key: string, text: Stored): ReadResult {
    const seen = headerOf(text);
    this.l1?.drop([key]);
    const redisKey = this.keyOf(key);
    this.#gate
      .call('cache discard', this.#gate.nodeOf(redisKey), new Budget(this.#options.timeout), () =>
        this.#gate.redis.unlink(redisKey),
      )
      .catch(() => {});
    return { state: 'miss', seen };
  }
}
