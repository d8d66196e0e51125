import { z } from 'zod';
import type { Duration } from '../common/duration.js';
import { durationSchema, parseOptions } from '../common/options.js';
import { MAX_KEY_LENGTH } from './bus-protocol.js';

/** What a loader may decide about the entry it loads, from the value it loaded. */
export interface EntryOptions {
  /** How long this entry is fresh. */
  ttl?: Duration;
  /** How long after `ttl` it may be served stale. */
  staleFor?: Duration;
  /**
   * The entry's tags, replacing the call's. A tag the call did not declare is read after the load,
   * and an entry whose new tag was invalidated while the loader ran is not stored.
   */
  tags?: string[];
}

/**
 * What a loader receives (adaptive caching): it may set this entry's ttl, staleFor and tags from
 * the value it loaded, or ask for the value not to be cached at all. A loader that ignores it
 * (`() => db.user(id)`) gets the call's options.
 *
 * @example
 * ```ts
 * await cache.getOrSet(`user:${id}`, async (ctx) => {
 *   const user = await db.user(id)
 *   if (!user) ctx.setOptions({ ttl: '10s' })  // cache "not found" briefly
 *   else if (user.draft) ctx.skip()            // return it, but do not cache it
 *   else ctx.setOptions({ tags: [`org:${user.orgId}`] })
 *   return user ?? null
 * })
 * ```
 */
export interface LoadContext {
  /** The key being loaded. */
  readonly key: string;
  /** This entry's ttl, staleFor (ms) and tags as they stand now: the call's, or what {@link setOptions} set. */
  readonly options: { readonly ttl: number; readonly staleFor: number; readonly tags: readonly string[] | undefined };
  /** Whether {@link skip} was called. */
  readonly skipped: boolean;
  /**
   * Sets this entry's ttl, staleFor and/or tags (tags replace the call's). Validated like a call's
   * options. @throws InvalidOptionError (thrown inside the loader: the load fails with it).
   */
  setOptions(options: EntryOptions): void;
  /**
   * Returns the loaded value to every caller of this load without storing it: nothing is written,
   * and callers waiting on other instances load for themselves.
   */
  skip(): void;
}

const tagSchema = z.string().refine((tag) => tag.length > 0 && tag.length <= MAX_KEY_LENGTH, {
  message: `a non-empty tag of at most ${MAX_KEY_LENGTH} characters`,
});

/** Validates {@link EntryOptions}. */
export const entryOptionsSchema = z.strictObject({
  ttl: durationSchema().optional(),
  staleFor: durationSchema({ allowZero: true }).optional(),
  tags: z.array(tagSchema).min(1, { message: 'at least one tag (leave tags out to keep the call tags)' }).optional(),
});

/** The {@link LoadContext} of one loader run; the filler reads what the loader decided. */
export class LoadControl implements LoadContext {
  readonly key: string;
  ttlMs: number;
  staleForMs: number;
  tags: string[] | undefined;
  /** Whether the loader set tags (then {@link tags} replaces the call's). */
  tagsChanged = false;
  #skipped = false;

  constructor(key: string, spec: { ttlMs: number; staleForMs: number; tags: string[] | undefined }) {
    this.key = key;
    this.ttlMs = spec.ttlMs;
    this.staleForMs = spec.staleForMs;
    this.tags = spec.tags;
  }

  get options(): { ttl: number; staleFor: number; tags: readonly string[] | undefined } {
    return { ttl: this.ttlMs, staleFor: this.staleForMs, tags: this.tags };
  }

  get skipped(): boolean {
    return this.#skipped;
  }

  setOptions(options: EntryOptions): void {
    const parsed = parseOptions(entryOptionsSchema, options, 'LoadContext.setOptions()');
    if (parsed.ttl !== undefined) this.ttlMs = parsed.ttl;
    if (parsed.staleFor !== undefined) this.staleForMs = parsed.staleFor;
    if (parsed.tags !== undefined) {
      this.tags = [...new Set(parsed.tags)];
      this.tagsChanged = true;
    }
  }

  skip(): void {
    this.#skipped = true;
  }
}
