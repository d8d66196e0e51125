import type { CacheOperationMessage } from '../observability/channels.js';
import type { Coherence } from './coherence.js';
import type { Filler } from './filler.js';
import { Budget } from './gate.js';
import { CachedLoaderError, type LoadSpec } from './load.js';
import { loadFresh, settleWithin, withinHardTimeout } from './load-timeouts.js';
import type { ResolvedCacheOptions } from './options.js';
import type { CacheReporter } from './reporter.js';
import type { EntryStore, ReadResult } from './store.js';

/** What getOrSet works with; the cache owns all of it. */
export interface GetOrSetContext {
  options: ResolvedCacheOptions;
  store: EntryStore;
  filler: Filler;
  coherence: Coherence;
  report: CacheReporter;
}

/**
 * getOrSet once its arguments are checked: read, then serve, refresh or load. A fresh hit is
 * decided synchronously inside the read's one promise (no async function per layer: each would be
 * a promise and a microtask hop on every hit); a stale entry or a miss goes on in {@link settle}.
 */
export function getOrSet(
  context: GetOrSetContext,
  key: string,
  call: LoadSpec<unknown>,
  message: CacheOperationMessage | undefined,
): Promise<unknown> {
  const budget = new Budget(context.options.timeout);
  if (call.forceFresh) {
    context.report.miss(key, message);
    return bounded(context, key, call, loadFresh(context.store, context.filler, key, call, budget));
  }
  return context.store.readThen(key, call.schema, budget, context.coherence.snapshot(), (read) => {
    if (read?.state === 'fresh' && read.entry.kind === 'value') {
      context.report.hit(key, read.layer, false, message);
      if (context.filler.shouldRefreshEarly(read.entry)) void context.filler.refreshInBackground(key, call);
      return read.entry.value;
    }
    return settle(context, key, call, budget, read, message);
  });
}

/** Everything but a fresh hit: a cached loader error, a stale entry, or a miss (`read` undefined: Redis failed). */
async function settle(
  context: GetOrSetContext,
  key: string,
  call: LoadSpec<unknown>,
  budget: Budget,
  read: ReadResult | undefined,
  message: CacheOperationMessage | undefined,
): Promise<unknown> {
  const { filler, report } = context;
  if (read && read.state !== 'miss' && read.entry.kind === 'error') {
    if (read.state === 'fresh') throw new CachedLoaderError(key, String(read.entry.value));
  } else if (read?.state === 'stale') {
    const refresh = filler.refreshInBackground(key, call);
    // softTimeout: wait that long for the refresh, then serve the stale value (it goes on).
    const soft = Math.min(call.softTimeoutMs, call.hardTimeoutMs ?? call.softTimeoutMs);
    const refreshed = soft > 0 ? await settleWithin(refresh, soft) : undefined;
    if (refreshed) {
      report.miss(key, message);
      return refreshed.value;
    }
    report.hit(key, read.layer, true, message);
    return read.entry.value;
  }
  report.miss(key, message);
  const seen = read?.state === 'miss' ? read.seen : null;
  return bounded(context, key, call, filler.load(key, call, { budget, redisFailed: read === undefined, seen }));
}

/** A load, within the call's `hardTimeout`. */
function bounded(context: GetOrSetContext, key: string, call: LoadSpec<unknown>, load: Promise<unknown>) {
  return withinHardTimeout(key, call.hardTimeoutMs, load, () => context.report.stats.hardTimeouts++);
}
