import { InvalidOptionError } from '../common/errors.js';
import type { BusMessage } from './bus-protocol.js';
import type { Coherence } from './coherence.js';
import { decodeEnvelope } from './envelope.js';
import type { Filler } from './filler.js';
import { Budget } from './gate.js';
import { isCallerError } from './load.js';
import { type ResolvedCacheOptions, resolveCall, type WriteOptions } from './options.js';
import type { StandardSchemaV1 } from './schema.js';
import type { Encoded, EntryStore, ReadResult } from './store.js';
import { readTexts, setMany } from './store-many.js';
import type { TagVersions } from './tags.js';

/** One entry of {@link Cache.setMany}: a key, its value, and that entry's own write options. */
export interface SetManyEntry extends WriteOptions {
  /** The cache key, without the cache's prefix. */
  key: string;
  /** The value to store, serialized as `set` would. */
  value: unknown;
}

/** What reading and writing many keys works with; the cache owns all of it. */
export interface ManyContext {
  options: ResolvedCacheOptions;
  store: EntryStore;
  tags: TagVersions;
  filler: Filler;
  coherence: Coherence;
  /** Publishes on the bus; rejects when it could not. */
  publish(message: Omit<BusMessage, 'i'>, budget: Budget): Promise<void>;
  hit(key: string, layer: 'l1' | 'l2'): void;
  miss(key: string): void;
  checkKey(key: unknown, where: string): asserts key is string;
}

/**
 * The fresh values of `keys`, in their order (`undefined` where there is none): L1 first, then
 * one MGET per hash slot of the rest, and one tag-version read for the tags of what was found that
 * this instance does not remember. Never rejects because of Redis: a failed slot reads as misses.
 */
export async function readMany(
  context: ManyContext,
  keys: readonly string[],
  schema: StandardSchemaV1 | undefined,
): Promise<unknown[]> {
  const { store, tags, coherence, options } = context;
  if (!Array.isArray(keys)) throw new InvalidOptionError('keys', keys, 'an array of keys', 'Cache.getMany()');
  for (const key of keys) context.checkKey(key, 'Cache.getMany()');
  const found = new Map<string, ReadResult>();
  const fromRedis: string[] = [];
  for (const key of new Set(keys)) {
    const cached = await store.fromL1(key, schema);
    if (cached) found.set(key, cached);
    else fromRedis.push(key);
  }
  if (fromRedis.length > 0) {
    const budget = new Budget(options.timeout);
    const since = coherence.snapshot();
    const texts = await readTexts(store, fromRedis, budget);
    // The tags of everything found, read at once rather than one read per entry.
    const unknown = new Set<string>();
    for (const text of texts.values()) {
      const written = text ? decodeEnvelope(text)?.tags : undefined;
      for (const tag in written) if (tags.versionOf(tag) === undefined) unknown.add(tag);
    }
    const lifetime = options.ttl + options.staleFor;
    const versions =
      unknown.size > 0
        ? await tags.current([...unknown], lifetime, false, budget, since).catch(() => undefined)
        : undefined;
    await Promise.all(
      fromRedis.map(async (key) => {
        const text = texts.get(key);
        if (text === undefined) return; // its slot failed: a miss
        const read = await store.evaluate(key, text, schema, budget, since, versions).catch(() => undefined);
        if (read) found.set(key, read);
      }),
    );
  }
  return keys.map((key) => {
    const read = found.get(key);
    if (read?.state === 'fresh' && read.entry.kind === 'value') {
      context.hit(key, read.layer);
      return read.entry.value;
    }
    context.miss(key);
    return undefined;
  });
}

/**
 * Stores many entries: one tag-version read for all their tags, then one script per hash slot
 * (each revoking in-flight fills of its keys), then one announcement. Resolves `true` when every
 * entry was stored and announced, `false` otherwise (the entries of the slots that answered are
 * stored and announced all the same).
 */
export async function writeMany(context: ManyContext, entries: readonly SetManyEntry[]): Promise<boolean> {
  const { store, filler, coherence, options } = context;
  const where = 'Cache.setMany()';
  if (!Array.isArray(entries)) {
    throw new InvalidOptionError('entries', entries, 'an array of { key, value, ttl?, staleFor?, tags? }', where);
  }
  const calls = entries.map((item, i) => {
    if (typeof item !== 'object' || item === null) {
      throw new InvalidOptionError(`entries[${i}]`, item, 'an object { key, value, ttl?, staleFor?, tags? }', where);
    }
    const { key, value, ...writeOptions } = item;
    context.checkKey(key, where);
    const call = resolveCall(options, writeOptions, `${where} entries[${i}]`, () => value);
    return { key, call, prepared: store.prepare(key, value) };
  });
  const keys = calls.map(({ key }) => key);
  if (new Set(keys).size !== keys.length) {
    throw new InvalidOptionError('entries', keys, 'entries with distinct keys', where);
  }
  if (calls.length === 0) return true;
  const budget = new Budget(options.timeout);
  const since = coherence.snapshot();
  try {
    const tagged = calls.filter(({ call }) => call.tags);
    let versions: ReadonlyMap<string, number> | undefined;
    if (tagged.length > 0) {
      const names = [...new Set(tagged.flatMap(({ call }) => call.tags as string[]))];
      const lifetime = Math.max(...tagged.map(({ call }) => call.ttlMs + call.staleForMs));
      versions = await filler.versionsBeforeLoad({ tags: names, ttlMs: lifetime, staleForMs: 0 }, budget, since);
    }
    const encoded = new Map<string, Encoded>();
    for (const { key, call, prepared } of calls) {
      const own =
        call.tags && versions ? new Map(call.tags.map((tag) => [tag, versions.get(tag) as number])) : undefined;
      encoded.set(key, store.encode(prepared, { ...call, tags: own, loadMs: 0 }));
    }
    const stored = await setMany(store, encoded, budget);
    if (stored.length === 0) return false;
    const now = Date.now();
    for (const key of stored) store.l1?.fill(key, (encoded.get(key) as Encoded).entry, since, now);
    coherence.keysChanged(stored);
    filler.detach(stored);
    await context.publish({ k: stored }, budget);
    return stored.length === calls.length;
  } catch (error) {
    if (isCallerError(error)) throw error;
    return false;
  }
}
