import { RedscaleError } from '../common/errors.js';
import type { Budget } from './gate.js';
import type { Entry } from './l1.js';
import type { LoadContext } from './load-context.js';
import { type StandardSchemaV1, validate } from './schema.js';

/** Produces a value on a miss; it may adapt its entry through the {@link LoadContext} it receives. */
export type Loader<T> = (context: LoadContext) => Promise<T> | T;

/** One getOrSet call, resolved against the cache's defaults. */
export interface LoadSpec<T> {
  ttlMs: number;
  staleForMs: number;
  tags: string[] | undefined;
  schema: StandardSchemaV1 | undefined;
  loader: Loader<T>;
  /** On a stale hit, how long to wait for the refresh before returning the stale value. */
  softTimeoutMs: number;
  /** How long to wait for a load before failing with {@link LoaderTimeoutError}; undefined: no limit. */
  hardTimeoutMs: number | undefined;
  /** Load anew whatever the cache holds. */
  forceFresh: boolean;
}

/** Where a foreground load starts from: the call's budget, and what its read found. */
export interface LoadStart {
  budget: Budget;
  /** The read failed: Redis is not used for this load. */
  redisFailed: boolean;
  /** Header of what Redis held when the call read it; null to take the fill lock without comparing. */
  seen: Buffer | null;
  /**
   * forceFresh: the header of the entry the call found, which this load must replace (found
   * again while waiting for another instance, it is not an answer). Undefined otherwise.
   */
  replace?: Buffer;
}

/** A loader failure the cache remembered (`errorTtl`): thrown without running the loader again. */
export class CachedLoaderError extends RedscaleError {
  constructor(key: string, message: string) {
    super('ERR_LOADER_FAILED', `redscale: loading "${key}" failed recently: ${message}`, { context: { key } });
  }
}

/** `getOrSet` waited `hardTimeout` for a value and gave up; the load goes on in the background. */
export class LoaderTimeoutError extends RedscaleError {
  constructor(key: string, timeoutMs: number) {
    super('ERR_LOADER_TIMEOUT', `redscale: loading "${key}" took longer than its hard timeout of ${timeoutMs} ms`, {
      context: { key, timeoutMs },
    });
  }
}

/** Errors the caller caused (bad values, bad options): thrown, never absorbed as a Redis failure. */
export function isCallerError(error: unknown): boolean {
  return error instanceof RedscaleError && (error.code === 'ERR_INVALID_OPTION' || error.code === 'ERR_SERIALIZATION');
}

/** What a caller gets for a value it loaded: the entry's value as every instance reads it, checked by the schema. */
export async function deliver(key: string, entry: Entry, schema: StandardSchemaV1 | undefined): Promise<unknown> {
  if (!schema) return entry.value;
  const result = await validate(schema, entry.value);
  if (!result.ok) {
    throw new RedscaleError(
      'ERR_SERIALIZATION',
      `redscale: the value loaded for "${key}" does not pass its schema: ${result.message}`,
      { context: { key } },
    );
  }
  entry.checked = { schema, value: result.value };
  return result.value;
}
