import { InvalidOptionError } from '../common/errors.js';
import { type BusMessage, MAX_KEY_LENGTH, MAX_PATTERN_LENGTH } from './bus-protocol.js';
import type { Coherence } from './coherence.js';
import type { Filler } from './filler.js';
import { Budget, type RedisGate } from './gate.js';
import type { ResolvedCacheOptions } from './options.js';
import { compileGlob, unlinkEntries } from './patterns.js';
import type { CacheReporter } from './reporter.js';
import type { EntryStore } from './store.js';
import { deleteEntries } from './store-many.js';
import type { TagVersions } from './tags.js';

/** What invalidations work with; the cache owns all of it. */
export interface InvalidationContext {
  options: ResolvedCacheOptions;
  gate: RedisGate;
  store: EntryStore;
  tags: TagVersions;
  coherence: Coherence;
  filler: Filler;
  report: CacheReporter;
  /** Publishes on the bus (at once without one); rejects when it could not. */
  publish(message: Omit<BusMessage, 'i'>, budget: Budget): Promise<void>;
}

/** `Cache.delete()`: Redis, this instance, then every other one through the bus. */
export async function deleteKeys(context: InvalidationContext, keys: string | string[]): Promise<number> {
  const list = typeof keys === 'string' ? [keys] : keys;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError('keys', keys, 'a key or a non-empty array of keys', 'Cache.delete()');
  }
  for (const key of list) checkKey(key, 'Cache.delete()');
  const budget = new Budget(context.options.timeout);
  forget(context, list);
  const deleted = await deleteEntries(context.store, list, budget);
  // Reads that were answered before the delete may have filled L1 meanwhile.
  forget(context, list);
  context.filler.wake(list, 'written');
  context.report.stats.deletedKeys += deleted;
  await context.publish({ k: list }, budget);
  context.report.send('invalidate', { keys: list });
  return deleted;
}

/** `Cache.invalidateTags()`: new versions in Redis, then every instance told. */
export async function invalidateTags(context: InvalidationContext, tags: string[]): Promise<void> {
  if (
    !Array.isArray(tags) ||
    tags.length === 0 ||
    tags.some((tag) => typeof tag !== 'string' || tag === '' || tag.length > MAX_KEY_LENGTH)
  ) {
    throw new InvalidOptionError(
      'tags',
      tags,
      `a non-empty array of non-empty strings of at most ${MAX_KEY_LENGTH} characters`,
      'Cache.invalidateTags()',
    );
  }
  const { options, coherence, report } = context;
  const budget = new Budget(options.timeout);
  const lifetime = options.ttl + options.staleFor;
  const versions = await context.tags.invalidate([...new Set(tags)], lifetime, budget, coherence.snapshot());
  report.stats.invalidatedTags += versions.size;
  await context.publish({ t: Object.fromEntries(versions) }, budget);
  report.send('invalidate', { tags });
}

/** `Cache.invalidatePattern()`. */
export async function invalidatePattern(context: InvalidationContext, pattern: string): Promise<number> {
  if (typeof pattern !== 'string' || pattern === '' || pattern.length > MAX_PATTERN_LENGTH) {
    throw new InvalidOptionError(
      'pattern',
      pattern,
      `a non-empty glob of at most ${MAX_PATTERN_LENGTH} characters, relative to the cache prefix`,
      'Cache.invalidatePattern()',
    );
  }
  return unlinkMatching(context, pattern);
}

/** `Cache.clear()`: everything in the namespace. */
export function clearAll(context: InvalidationContext): Promise<number> {
  return unlinkMatching(context, undefined);
}

/** Deletes the entries `pattern` matches (undefined: all) here, in Redis, and on every instance. */
async function unlinkMatching(context: InvalidationContext, pattern: string | undefined): Promise<number> {
  const matches = pattern === undefined ? all : compileGlob(pattern);
  const { prefix, timeout } = context.options;
  forgetMatching(context, matches);
  const deleted = await unlinkEntries(context.gate, prefix, pattern, timeout);
  forgetMatching(context, matches);
  context.report.stats.invalidatedPatternKeys += deleted;
  await context.publish({ p: pattern ?? '*' }, new Budget(timeout));
  context.report.send('invalidate', { pattern: pattern ?? '*' });
  return deleted;
}

const all = () => true;

/**
 * These keys changed: out of L1, no fill that started before this may land there, and no call
 * from now on joins a load of them that started before this.
 */
export function forget(context: InvalidationContext, keys: readonly string[]): void {
  context.store.l1?.drop(keys);
  context.coherence.keysChanged(keys);
  context.filler.detach(keys);
}

/** {@link forget} for every key `matches` accepts. */
export function forgetMatching(context: InvalidationContext, matches: (key: string) => boolean): void {
  context.store.l1?.dropMatching(matches);
  context.coherence.allChanged();
  context.filler.detachMatching(matches);
}

/** Refuses a key that is not a non-empty string of at most {@link MAX_KEY_LENGTH} characters. */
export function checkKey(key: unknown, where: string): asserts key is string {
  if (typeof key !== 'string' || key === '' || key.length > MAX_KEY_LENGTH) {
    throw new InvalidOptionError('key', key, `a non-empty string of at most ${MAX_KEY_LENGTH} characters`, where);
  }
}
