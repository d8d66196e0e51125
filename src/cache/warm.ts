import { z } from 'zod';
import { InvalidOptionError } from '../common/errors.js';
import { parseOptions, positiveInt } from '../common/options.js';
import type { Loader } from './load.js';
import type { LoadContext } from './load-context.js';
import type { GetOrSetOptions } from './options.js';

/** One entry of {@link Cache.warm}: a key, its loader, and that call's getOrSet options. */
export interface WarmEntry<T = unknown> extends GetOrSetOptions {
  /** The cache key, without the cache's prefix. */
  key: string;
  /** Loads the value when the key is missing or stale. */
  loader: Loader<T>;
}

/** Options of {@link Cache.warm} and {@link Cache.prefetch}. */
export interface WarmOptions {
  /** How many keys load at once. Default `8`. */
  concurrency?: number;
  /** Stops starting new keys when aborted (the ones running finish); the report counts what was done. */
  signal?: AbortSignal;
}

/** What a warm-up did. It never rejects for a key that failed: those are listed here. */
export interface WarmReport {
  /** Keys whose value is now in the cache or was just loaded (fresh, or loaded by this warm-up or another instance). */
  done: number;
  /** Keys that failed (loader error, hard timeout, an invalid key or option), with the error. */
  failed: Array<{ key: string; error: unknown }>;
  /** Keys not started because `signal` aborted. */
  skipped: number;
}

/** Validates {@link WarmOptions}. */
export const warmOptionsSchema = z.strictObject({
  concurrency: positiveInt().default(8),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, { message: 'an AbortSignal' }).optional(),
});

/**
 * Runs `getOrSet` for each entry, at most `concurrency` at a time, through the cache's usual
 * stampede protection (concurrent warm-ups on several instances load each key once).
 */
export async function warmEntries(
  entries: readonly WarmEntry[],
  options: WarmOptions,
  getOrSet: (key: string, loader: Loader<unknown>, options: GetOrSetOptions) => Promise<unknown>,
  where: string,
): Promise<WarmReport> {
  const { concurrency, signal } = parseOptions(warmOptionsSchema, options, where);
  if (!Array.isArray(entries)) {
    throw new InvalidOptionError('entries', entries, 'an array of { key, loader, ...getOrSet options }', where);
  }
  // Every entry is checked before any loads: a bad one is the caller's error, not a failed key.
  const calls = entries.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || typeof entry.loader !== 'function') {
      throw new InvalidOptionError(`entries[${i}]`, entry, 'an object { key, loader, ...getOrSet options }', where);
    }
    const { key, loader, ...callOptions } = entry;
    return { key, loader, callOptions };
  });
  const report: WarmReport = { done: 0, failed: [], skipped: 0 };
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const call = calls[next++] as (typeof calls)[number];
      if (signal?.aborted) {
        report.skipped++;
        continue;
      }
      try {
        await getOrSet(call.key, call.loader, call.callOptions);
        report.done++;
      } catch (error) {
        // A bad key or option of one entry is that entry's failure too: the others still warm.
        report.failed.push({ key: call.key, error });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, calls.length) }, worker));
  return report;
}

/** The entries of a {@link Cache.prefetch}: one loader for every key. */
export function prefetchEntries<T>(
  keys: readonly string[],
  loader: (key: string, context: LoadContext) => Promise<T> | T,
  options: GetOrSetOptions,
  where: string,
): WarmEntry[] {
  if (!Array.isArray(keys)) throw new InvalidOptionError('keys', keys, 'an array of keys', where);
  if (typeof loader !== 'function') {
    throw new InvalidOptionError('loader', loader, 'a function (key, context) that loads the value', where);
  }
  return keys.map((key) => ({ ...options, key, loader: (context: LoadContext) => loader(key, context) }));
}
