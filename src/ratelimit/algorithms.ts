import type { RuleCode } from './rules.js';

/**
 * The rate-limit decision, in TypeScript, for the in-memory backend. It is the same logic, in
 * the same order of arithmetic, as src/scripts/lua/ratelimit.lua, the specialised ratelimit-*.lua
 * scripts (one limit; several fixed or sliding windows) and ratelimit-refund.lua — a differential
 * property test runs them on the same calls and requires identical results. Change them together.
 */

/** How a call treats the limits: count all-or-nothing, only look, or count even when over. */
export type Mode = 'consume' | 'peek' | 'hit';

/** A limit as the algorithms see it: code (see `algorithmCode`), limit, window in ms. */
export interface RuleSpec {
  code: RuleCode;
  limit: number;
  window: number;
  /**
   * First-hit windows only: what a counted hit that leaves the count above the limit does to
   * the window — nothing (`keep`), restart it at that hit (`restart`), or restart it with a
   * length of `window × 2^(count − limit − 1)` (`backoff`). Default `keep`.
   */
  exceeded?: ExceededMode;
  /** GCRA only: the most cost admitted at once. */
  burst?: number;
}

/** See {@link RuleSpec.exceeded}. */
export type ExceededMode = 'keep' | 'restart' | 'backoff';

/** The longest a backoff window grows: 10 years, as any duration option. */
export const MAX_WINDOW_MS = 10 * 365 * 86_400_000;

/** One limit's verdict, as the script returns it. */
export interface LimitVerdict {
  allowed: boolean;
  /** What the limit has counted in its window after this call (sliding window: the estimate, rounded up). */
  used: number;
  resetAt: number;
  retryAfter: number;
}

/** What a backend decided for one call. */
export interface Decision {
  allowed: boolean;
  /** 0 allowed, 1 refused by a limit, 2 blocked. */
  reason: 0 | 1 | 2;
  /** The time the decision was made at, in ms. */
  now: number;
  retryAfter: number;
  limits: LimitVerdict[];
}

/**
 * A window's count `c` of window `w`; a sliding window also keeps `p`, the count of window
 * `w - 1`. A first-hit window keeps its start in `w`, and in `l` its length when a hit over the
 * limit changed it (see {@link RuleSpec.exceeded}). GCRA keeps in `w` the time (ms) of its
 * last change and in `c` how far its theoretical arrival time was then ahead of it, in units of
 * 1/limit ms (that is, cost × window: the bucket's level, which a change of plan keeps).
 */
export interface WindowState {
  w: number;
  c: number;
  p: number;
  l?: number;
}

/** Where the in-memory backend keeps state; `ttlMs` is for clean-up only, never for logic. */
export interface StateStore {
  getWindow(key: string): WindowState | undefined;
  setWindow(key: string, state: WindowState, ttlMs: number): void;
  /** Timestamps of a sliding log, ascending. The array may be changed in place. */
  getLog(key: string): number[] | undefined;
  setLog(key: string, entries: number[], ttlMs: number): void;
  getBlock(key: string): number | undefined;
  setBlock(key: string, until: number, ttlMs: number): void;
  delete(key: string): void;
}

/** How a block ends: at least when the refusing limit has room (`until-room`), or exactly, with fresh counts. */
export type BlockMode = 'until-room' | 'exact';

const EPSILON = 1e-9;

interface Verdict {
  spec: RuleSpec;
  index: number;
  admit: boolean;
  used: number;
  reset: number;
  retry: number;
  current: number;
  previous: number;
}

/**
 * How long a limit's state matters, ms: a window, or for GCRA the time an empty bucket takes to
 * refill (`burst × window / limit`).
 */
export function spanOf(spec: RuleSpec): number {
  return spec.code === 'g' ? Math.ceil(((spec.burst ?? spec.limit) * spec.window) / spec.limit) : spec.window;
}

function evaluate(store: StateStore, spec: RuleSpec, key: string, now: number, cost: number): Verdict {
  const { code, limit, window } = spec;
  const index = Math.floor(now / window);
  const start = index * window;
  if (code === 'g') {
    // In units of 1/limit ms, one unit of cost takes `window` to refill: every value below is an
    // integer under 2^53 (burst × window is capped), so Lua and JS agree exactly. `ahead` is how
    // far the theoretical arrival time (TAT) is ahead of now; `current` carries it. It drains at
    // `limit` units per ms from the last change (a clock that stepped back drains nothing).
    const stored = store.getWindow(key);
    const ahead = stored ? Math.max(0, stored.c - Math.max(0, now - stored.w) * limit) : 0;
    const span = (spec.burst ?? limit) * window;
    const next = ahead + cost * window;
    const admit = next <= span;
    return {
      spec,
      index,
      admit,
      used: Math.ceil(ahead / window),
      reset: now + Math.ceil(ahead / limit),
      retry: admit ? 0 : Math.ceil((next - span) / limit),
      current: ahead,
      previous: 0,
    };
  }
  if (code === 'l') {
    const stored = store.getLog(key);
    const entries = stored ?? [];
    trimLog(entries, now - window);
    const used = entries.length;
    const admit = used + cost <= limit;
    const retry = admit ? 0 : (entries[used + cost - limit - 1] as number) + window - now;
    const reset = (admit ? now : (entries[used - 1] as number)) + window;
    if (stored) store.setLog(key, entries, window);
    return { spec, index, admit, used, reset, retry, current: 0, previous: 0 };
  }
  const stored = store.getWindow(key);
  if (code === 'a') {
    // w holds the window's start time (and l its length, when a hit over the limit changed it);
    // a window that has ended counts nothing, and the next counted hit starts a new one (a peek
    // or a refusal starts nothing). `previous` carries the window's length.
    const length = stored?.l ?? window;
    const active = stored !== undefined && now < stored.w + length;
    const from = active ? stored.w : now;
    const c = active ? stored.c : 0;
    const span = active ? length : window;
    const admit = c + cost <= limit;
    const reset = from + span;
    return { spec, index: from, admit, used: c, reset, retry: admit ? 0 : reset - now, current: c, previous: span };
  }
  const w = stored?.w;
  let c = stored?.c ?? 0;
  const reset = start + window;
  if (code === 'f') {
    if (w !== index) c = 0;
    const admit = c + cost <= limit;
    return { spec, index, admit, used: c, reset, retry: admit ? 0 : start + window - now, current: c, previous: 0 };
  }
  let p = 0;
  if (w === index) {
    p = stored?.p ?? 0;
  } else if (w === index - 1) {
    p = c;
    c = 0;
  } else {
    c = 0;
  }
  const elapsed = now - start;
  const used = (p * (window - elapsed)) / window + c;
  const admit = used + cost <= limit + EPSILON;
  let retry = 0;
  if (!admit) {
    if (c + cost <= limit && p > 0) {
      retry = Math.ceil(window - ((limit - c - cost) * window) / p) - elapsed;
    } else {
      retry = window - elapsed + Math.max(0, Math.ceil(window - ((limit - cost) * window) / c));
    }
    if (retry < 1) retry = 1;
  }
  return { spec, index, admit, used, reset, retry, current: c, previous: p };
}

/** Drops entries at or before `oldest` (ZREMRANGEBYSCORE -inf oldest). */
function trimLog(entries: number[], oldest: number): void {
  let drop = 0;
  while (drop < entries.length && (entries[drop] as number) <= oldest) drop++;
  if (drop) entries.splice(0, drop);
}

/** Decides one call against every limit of an identity, all or nothing (see ratelimit.lua). */
export function decide(
  store: StateStore,
  blockKey: string,
  ruleKeys: readonly string[],
  specs: readonly RuleSpec[],
  mode: Mode,
  now: number,
  cost: number,
  blockFor: number,
  blockMode: BlockMode = 'until-room',
): Decision {
  let reason: 0 | 1 | 2 = 0;
  let retryAfter = 0;
  if (blockFor > 0) {
    const blockedUntil = store.getBlock(blockKey);
    if (blockedUntil !== undefined && blockedUntil > now) {
      if (mode !== 'hit') {
        reason = 2;
        retryAfter = blockedUntil - now;
      }
    } else if (blockedUntil !== undefined && blockMode === 'exact') {
      // An exact block has ended: the identity starts afresh.
      store.delete(blockKey);
      for (const key of ruleKeys) store.delete(key);
    }
  }
  const verdicts = specs.map((spec, i) => evaluate(store, spec, ruleKeys[i] as string, now, cost));
  const admitted = reason === 0 && verdicts.every((verdict) => verdict.admit);

  if ((mode === 'consume' && admitted) || mode === 'hit') {
    verdicts.forEach((verdict, i) => {
      const key = ruleKeys[i] as string;
      const { code, window } = verdict.spec;
      if (code === 'g') {
        // The TAT moves on by the cost; the state lives until the bucket is full again.
        const ahead = verdict.current + cost * window;
        const full = Math.ceil(ahead / verdict.spec.limit);
        store.setWindow(key, { w: now, c: ahead, p: 0 }, full);
        verdict.reset = now + full;
      } else if (code === 'l') {
        const entries = store.getLog(key) ?? [];
        for (let k = 0; k < cost; k++) insertSorted(entries, now);
        store.setLog(key, entries, window);
      } else if (code === 'a') {
        const counted = verdict.used + cost;
        let from = verdict.index;
        let length = verdict.previous;
        const exceeded = verdict.spec.exceeded ?? 'keep';
        if (counted > verdict.spec.limit && exceeded !== 'keep') {
          // Over the limit: the window restarts at this hit (continueExceeding), or restarts
          // longer each time (exponentialBackoff), as @fastify/rate-limit counts.
          from = now;
          length =
            exceeded === 'restart' ? window : Math.min(window * 2 ** (counted - verdict.spec.limit - 1), MAX_WINDOW_MS);
          verdict.index = from;
          verdict.reset = from + length;
          if (verdict.retry > 0) verdict.retry = length;
        }
        store.setWindow(
          key,
          { w: from, c: counted, p: 0, ...(length !== window && { l: length }) },
          verdict.reset - now,
        );
      } else if (code === 'f') {
        store.setWindow(key, { w: verdict.index, c: verdict.used + cost, p: 0 }, verdict.reset - now);
      } else {
        store.setWindow(
          key,
          { w: verdict.index, c: verdict.current + cost, p: verdict.previous },
          verdict.reset + window - now,
        );
      }
      verdict.used += cost;
    });
  }

  if (reason === 0 && !admitted) {
    reason = 1;
    for (const verdict of verdicts) if (!verdict.admit && verdict.retry > retryAfter) retryAfter = verdict.retry;
    if (mode === 'consume' && blockFor > 0) {
      if (blockMode === 'exact') {
        // Exactly blockFor; the block's record outlives it by the longest any state matters
        // (two windows), so the first call after it can wipe the counts.
        retryAfter = blockFor;
        store.setBlock(blockKey, now + blockFor, blockFor + 2 * maxWindow(specs));
      } else {
        if (blockFor > retryAfter) retryAfter = blockFor;
        store.setBlock(blockKey, now + retryAfter, retryAfter);
      }
    }
  }

  return {
    allowed: admitted,
    reason,
    now,
    retryAfter,
    limits: verdicts.map((verdict) => ({
      allowed: verdict.admit,
      used: Math.max(0, Math.ceil(verdict.used - EPSILON)),
      resetAt: verdict.reset,
      retryAfter: verdict.retry,
    })),
  };
}

function maxWindow(specs: readonly RuleSpec[]): number {
  let max = 0;
  for (const spec of specs) if (spanOf(spec) > max) max = spanOf(spec);
  return max;
}

function insertSorted(entries: number[], value: number): void {
  let at = entries.length;
  while (at > 0 && (entries[at - 1] as number) > value) at--;
  entries.splice(at, 0, value);
}

/** Gives back `cost` to every limit, never below zero (see ratelimit-refund.lua). */
export function refund(
  store: StateStore,
  ruleKeys: readonly string[],
  specs: readonly RuleSpec[],
  now: number,
  cost: number,
): number {
  let refunded = 0;
  specs.forEach((spec, i) => {
    const key = ruleKeys[i] as string;
    const index = Math.floor(now / spec.window);
    if (spec.code === 'l') {
      const entries = store.getLog(key);
      if (!entries) return;
      trimLog(entries, now - spec.window);
      if (entries.length > 0) {
        entries.splice(Math.max(0, entries.length - cost), cost);
        refunded++;
      }
      store.setLog(key, entries, spec.window);
      return;
    }
    const stored = store.getWindow(key);
    if (spec.code === 'g') {
      // Moves the TAT back by the cost, never before now (a full bucket).
      const ahead = stored ? Math.max(0, stored.c - Math.max(0, now - stored.w) * spec.limit) : 0;
      if (ahead === 0) return;
      const left = Math.max(0, ahead - cost * spec.window);
      if (left === 0) store.delete(key);
      else store.setWindow(key, { w: now, c: left, p: 0 }, Math.ceil(left / spec.limit));
      refunded++;
      return;
    }
    const current =
      spec.code === 'a' ? stored !== undefined && now < stored.w + (stored.l ?? spec.window) : stored?.w === index;
    if (stored && stored.c > 0 && current) {
      store.setWindow(key, { ...stored, c: Math.max(0, stored.c - cost) }, 2 * spec.window);
      refunded++;
    }
  });
  return refunded;
}
