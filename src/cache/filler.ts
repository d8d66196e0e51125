import { performance } from 'node:perf_hooks';
import { InvalidOptionError, messageOf } from '../common/errors.js';
import { type CacheOperationMessage, traced, tracing } from '../observability/channels.js';
import type { Coherence, Snapshot } from './coherence.js';
import { isBinaryKind, type Stored } from './envelope.js';
import { FillLocks, headerOf } from './fill-lock.js';
import { Budget } from './gate.js';
import type { Entry } from './l1.js';
import { CachedLoaderError, deliver, type LoadSpec, type LoadStart } from './load.js';
import { LoadControl } from './load-context.js';
import type { ResolvedCacheOptions } from './options.js';
import type { CacheStats } from './stats.js';
import type { Encoded, EntryStore } from './store.js';
import type { TagVersions } from './tags.js';
import { FillWaiters, type Wake } from './waiters.js';

/** What the filler works with; the cache owns all of it. */
export interface FillContext {
  options: ResolvedCacheOptions;
  store: EntryStore;
  tags: TagVersions;
  locks: FillLocks;
  coherence: Coherence;
  stats: CacheStats;
  /** Publishes on the bus without waiting (failures are reported, never thrown). */
  announce(message: { k?: string[]; f?: string[] }): void;
  events: { load(key: string, durationMs: number): void; loadError(key: string, error: unknown): void };
}

/** What a loader run produced, and what it decided about its entry. */
interface Loaded {
  value: unknown;
  loadMs: number;
  control: LoadControl;
}

/** What a background refresh produced: the refreshed value, or nothing (not refreshed here, or it failed). */
export type Refreshed = { value: unknown } | undefined;

/** A load under the fill lock. */
interface Held {
  budget: Budget;
  since: Snapshot;
  token: string;
  lockKey: string;
  /** A background refresh: a stale value is being served meanwhile, and must survive a failure. */
  background: boolean;
}

/**
 * Fills the cache on a miss, so that one load serves everyone: concurrent misses in this process
 * share one promise; across instances one caller loads under the fill lock while the others wait
 * to be woken by the bus (or poll) and read the value it wrote. A waiter stops waiting and loads
 * itself — without storing — after `lock.wait`, or at once when the holder announces its load
 * failed. Only the lock's holder stores, and only while it still holds the lock (a delete or set
 * meanwhile revokes it). Also runs background refreshes (stale-while-revalidate, early refresh),
 * at most one per key across instances, which never replace a value with a failure.
 */
export class Filler {
  readonly #context: FillContext;
  readonly #waiters = new FillWaiters();
  readonly #loading = new Map<string, Promise<unknown>>();
  readonly #refreshing = new Map<string, Promise<Refreshed>>();

  constructor(context: FillContext) {
    this.#context = context;
  }

  /** Wakes callers waiting for another instance's load of these keys. */
  wake(keys: readonly string[], wake: Wake): void {
    this.#waiters.wake(keys, wake);
  }

  /** Wakes every waiter (the bus dropped: announcements may have been missed). */
  wakeAll(): void {
    this.#waiters.wakeAll();
  }

  /**
   * Lets calls from now on start their own load of these keys instead of joining one in flight:
   * the key was written, deleted or invalidated since that load began, so what it loaded may be
   * old. (Its own callers still get it: they asked before the change.)
   */
  detach(keys: readonly string[]): void {
    for (const key of keys) this.#loading.delete(key);
  }

  /** {@link detach} for the keys in flight that `matches` accepts. */
  detachMatching(matches: (key: string) => boolean): void {
    for (const key of [...this.#loading.keys()]) if (matches(key)) this.#loading.delete(key);
  }

  /**
   * Loads `key` once per instance: concurrent callers in this process share the load (a
   * forceFresh call starts its own, which later callers join).
   */
  load(key: string, call: LoadSpec<unknown>, start: LoadStart): Promise<unknown> {
    const pending = call.forceFresh ? undefined : this.#loading.get(key);
    if (pending) return pending;
    const load: Promise<unknown> = this.#loadOnce(key, call, start).finally(() => {
      if (this.#loading.get(key) === load) this.#loading.delete(key);
    });
    this.#loading.set(key, load);
    return load;
  }

  /** One load per instance: under the fill lock, or after waiting for whoever holds it. */
  async #loadOnce(key: string, call: LoadSpec<unknown>, start: LoadStart): Promise<unknown> {
    const { budget } = start;
    if (start.redisFailed) return this.#loadUncached(key, call, budget);
    const { store, locks, options, stats, coherence } = this.#context;
    const entryKey = store.keyOf(key);
    const lockKey = store.lockOf(key);
    const token = FillLocks.token();
    let seen: Buffer | null = start.seen;
    let waitingSince: number | undefined;
    let failed = false;
    for (;;) {
      // What a step reads is as new as the step: an invalidation before it cannot make it stale.
      let since = coherence.snapshot();
      const acquired = await locks.acquire(entryKey, lockKey, token, seen, budget).catch(() => undefined);
      if (!acquired || acquired.kind === 'late') return this.#loadUncached(key, call, budget);
      if (acquired.kind === 'acquired') {
        return this.#loadUnderLock(key, call, { budget, since, token, lockKey, background: false });
      }
      let text: Stored | null;
      if (acquired.kind === 'changed') {
        text = acquired.text;
        // The script's reply came as text, which mangles a binary payload: read its bytes.
        if (text !== null && isBinaryKind(text)) {
          try {
            text = await store.readText(key, budget);
          } catch {
            return this.#loadUncached(key, call, budget);
          }
        }
      } else {
        if (waitingSince === undefined) {
          waitingSince = performance.now();
          stats.lockWaits++;
        }
        const left = waitingSince + options.lock.wait - performance.now();
        if (left <= 0) return this.#loadUncached(key, call, budget);
        // Woken by the bus when the holder writes (or fails); polling covers a missing bus.
        const poll = coherence.live ? 250 : 50;
        const wake = await budget.excluding(() => this.#waiters.wait(key, Math.min(left, poll)));
        // The holder failed: load at once — unless errorTtl asks every instance to see its error.
        failed = wake === 'failed';
        if (failed && options.errorTtl === 0) return this.#loadUncached(key, call, budget);
        since = coherence.snapshot();
        try {
          text = await store.readText(key, budget);
        } catch {
          return this.#loadUncached(key, call, budget);
        }
      }
      const found = await store.evaluate(key, text, call.schema, budget, since).catch(() => undefined);
      if (!found) return this.#loadUncached(key, call, budget);
      // forceFresh: the entry the call set out to replace, found again, is no answer.
      const replaced = start.replace !== undefined && text !== null && headerOf(text).equals(start.replace);
      if (found.state === 'fresh' && !replaced) {
        if (found.entry.kind === 'error') throw new CachedLoaderError(key, String(found.entry.value));
        return found.entry.value;
      }
      if (failed) return this.#loadUncached(key, call, budget);
      seen = replaced ? (start.replace as Buffer) : found.state === 'miss' ? found.seen : null;
    }
  }

  /** Runs the loader and stores its value, only while this load still holds the fill lock. */
  async #loadUnderLock(key: string, call: LoadSpec<unknown>, held: Held): Promise<unknown> {
    const { store, locks } = this.#context;
    const stopExtending = this.#keepLocked(held);
    const startedAt = performance.now();
    try {
      let cacheable = true;
      let versions: ReadonlyMap<string, number> | undefined;
      if (call.tags) {
        // Read before loading: an invalidation during the load must make this value stale.
        versions = await this.versionsBeforeLoad(call, held.budget, held.since).catch(() => {
          cacheable = false;
          return undefined;
        });
      }
      let loaded: Loaded;
      try {
        loaded = await this.#runLoader(key, call, held.budget);
      } catch (error) {
        await this.#failed(key, error, held, cacheable ? versions : null);
        throw error;
      }
      const { control } = loaded;
      if (control.skipped) {
        cacheable = false;
      } else if (cacheable && control.tagsChanged) {
        const adapted = await this.#adaptedVersions(control, versions, startedAt, held.budget);
        if (adapted === null) cacheable = false;
        else versions = adapted;
      }
      let encoded: Encoded;
      let value: unknown;
      try {
        const spec = { ttlMs: control.ttlMs, staleForMs: control.staleForMs, tags: versions, loadMs: loaded.loadMs };
        encoded = store.encode(store.prepare(key, loaded.value), spec);
        value = await deliver(key, encoded.entry, call.schema);
      } catch (error) {
        this.#release(held);
        this.#announceFailure(key);
        throw error;
      }
      if (!cacheable) {
        this.#release(held);
        this.#announceFailure(key);
        return value;
      }
      const entryKey = store.keyOf(key);
      const result = await locks
        .fill(entryKey, held.lockKey, held.token, encoded.text, encoded.pxMs, held.budget)
        .catch(() => 'failed' as const);
      if (result === 'stored') {
        store.l1?.fill(key, encoded.entry, held.since, Date.now());
        this.#context.coherence.keysChanged([key]);
        this.#waiters.wake([key], 'written'); // callers here waiting on this load (the bus skips our own messages)
        this.#context.announce({ k: [key] });
      } else if (result !== 'revoked') {
        // Not stored, and nobody else will be told: let the waiters load rather than wait it out.
        // (A revoked fill was a delete or set, and that announced itself.)
        if (result === 'failed') this.#release(held);
        this.#announceFailure(key);
      }
      return value;
    } finally {
      stopExtending();
    }
  }

  /**
   * The versions of the tags a loader chose: those the call declared were read before the load;
   * the others are read now, and null means one of them may have been invalidated during the
   * load (or Redis failed): the value must not be stored.
   */
  async #adaptedVersions(
    control: LoadControl,
    before: ReadonlyMap<string, number> | undefined,
    startedAt: number,
    budget: Budget,
  ): Promise<ReadonlyMap<string, number> | undefined | null> {
    if (!control.tags) return undefined;
    const versions = new Map<string, number>();
    const unread: string[] = [];
    for (const tag of control.tags) {
      const version = before?.get(tag);
      if (version === undefined) unread.push(tag);
      else versions.set(tag, version);
    }
    if (unread.length === 0) return versions;
    const lifetime = control.ttlMs + control.staleForMs;
    const read = await this.#context.tags.since(unread, lifetime, startedAt, budget).catch(() => undefined);
    if (!read) return null;
    for (const [tag, version] of read) versions.set(tag, version);
    return versions;
  }

  /** A loader that threw (or returned undefined): remember the error if asked, tell waiters, release. */
  async #failed(
    key: string,
    error: unknown,
    held: Held,
    versions: ReadonlyMap<string, number> | undefined | null,
  ): Promise<void> {
    const { store, locks, options } = this.#context;
    // A background refresh never replaces the value it protects with an error (stale-if-error).
    if (!held.background && versions !== null && options.errorTtl > 0) {
      const message = messageOf(error);
      const encoded = store.encode(
        { payload: message, format: { binary: false, compressed: false }, value: message },
        { ttlMs: options.errorTtl, staleForMs: 0, tags: versions, loadMs: 0 },
        'error',
      );
      const result = await locks
        .fill(store.keyOf(key), held.lockKey, held.token, encoded.text, encoded.pxMs, held.budget)
        .catch(() => 'failed' as const);
      if (result === 'failed') this.#release(held);
    } else {
      this.#release(held);
    }
    this.#announceFailure(key);
  }

  /** Tells waiters, here and elsewhere, that this load will not store a value: they load themselves. */
  #announceFailure(key: string): void {
    this.#waiters.wake([key], 'failed');
    this.#context.announce({ f: [key] });
  }

  /** Runs the loader outside the call's Redis budget; `undefined` is a failure naming the key. */
  async #runLoader(key: string, call: LoadSpec<unknown>, budget: Budget): Promise<Loaded> {
    const { stats, events } = this.#context;
    stats.loads++;
    const started = performance.now();
    const control = new LoadControl(key, call);
    let value: unknown;
    try {
      value = await budget.excluding(() => this.#load(key, call, control));
      if (value === undefined) {
        throw new InvalidOptionError(
          'loader',
          value,
          'a loader result other than undefined (return null to cache "nothing")',
          `Cache.getOrSet(${JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key)})`,
        );
      }
    } catch (error) {
      stats.loadErrors++;
      events.loadError(key, error);
      throw error;
    }
    const loadMs = performance.now() - started;
    events.load(key, loadMs);
    return { value, loadMs, control };
  }

  /** Runs the loader, traced on `redscale:cache.load` when someone subscribed. */
  #load(key: string, call: LoadSpec<unknown>, control: LoadControl): Promise<unknown> | unknown {
    const channel = tracing.cacheLoad;
    if (!traced(channel)) return call.loader(control);
    const message: CacheOperationMessage = { prefix: this.#context.options.prefix, operation: 'load', key };
    return channel.tracePromise(async () => call.loader(control), message);
  }

  /** Loads without storing (Redis failing, the budget spent, or another instance holding the lock too long). */
  async #loadUncached(key: string, call: LoadSpec<unknown>, budget: Budget): Promise<unknown> {
    const { store } = this.#context;
    const loaded = await this.#runLoader(key, call, budget);
    const encoded = store.encode(store.prepare(key, loaded.value), { ...call, tags: undefined, loadMs: loaded.loadMs });
    return deliver(key, encoded.entry, call.schema);
  }

  /**
   * Refreshes `key` in the background, unless this instance or another one already is. Resolves
   * the refreshed value when this instance refreshed it (never rejects: a failed refresh resolves
   * undefined, and the stale value keeps being served).
   */
  refreshInBackground(key: string, call: LoadSpec<unknown>): Promise<Refreshed> {
    const running = this.#refreshing.get(key);
    if (running) return running;
    const loading = this.#loading.get(key);
    if (loading)
      return loading.then(
        (value) => ({ value }),
        () => undefined,
      );
    const { store, locks, options, coherence } = this.#context;
    const budget = new Budget(options.timeout);
    const since = coherence.snapshot();
    const token = FillLocks.token();
    const lockKey = store.lockOf(key);
    const refresh: Promise<Refreshed> = (async () => {
      const acquired = await locks.acquire(store.keyOf(key), lockKey, token, null, budget);
      if (acquired.kind !== 'acquired') return undefined;
      const value = await this.#loadUnderLock(key, call, { budget, since, token, lockKey, background: true });
      return { value };
    })()
      // Stale-if-error: the failure is counted and the stale value keeps being served.
      .catch(() => undefined)
      .finally(() => this.#refreshing.delete(key));
    this.#refreshing.set(key, refresh);
    return refresh;
  }

  /** XFetch: refresh early with a probability that grows as expiry nears, scaled by the load's duration. */
  shouldRefreshEarly(entry: Entry): boolean {
    const early = this.#context.options.earlyRefresh;
    if (!early || entry.loadMs <= 0) return false;
    return Date.now() - entry.loadMs * early.beta * Math.log(Math.random()) >= entry.freshUntil;
  }

  /** The current versions of a write's tags, read from Redis before its value is produced. */
  async versionsBeforeLoad(
    call: { tags: string[] | undefined; ttlMs: number; staleForMs: number },
    budget: Budget,
    since: Snapshot,
  ): Promise<ReadonlyMap<string, number> | undefined> {
    if (!call.tags) return undefined;
    return this.#context.tags.current(call.tags, call.ttlMs + call.staleForMs, true, budget, since);
  }

  /** Extends the fill lock every third of its ttl while the loader runs; returns the stop function. */
  #keepLocked(held: Held): () => void {
    const { locks, options } = this.#context;
    const timer = setInterval(() => {
      locks
        .renew(held.lockKey, held.token, false, new Budget(options.timeout))
        .then((ours) => {
          if (!ours) clearInterval(timer);
        })
        .catch(() => {});
    }, options.lock.ttl / 3);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /** Releases the fill lock without waiting (a late release is harmless: it is token-checked). */
  #release(held: Held): void {
    const { locks, options } = this.#context;
    locks.renew(held.lockKey, held.token, true, new Budget(options.timeout)).catch(() => {});
  }
}
