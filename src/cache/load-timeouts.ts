import { headerOf } from './fill-lock.js';
import type { Filler } from './filler.js';
import type { Budget } from './gate.js';
import { LoaderTimeoutError, type LoadSpec } from './load.js';
import type { EntryStore } from './store.js';

/**
 * forceFresh: loads whatever Redis holds and replaces it. The fill lock is taken only while the
 * entry is still the one read here; an entry written since by someone else is newer than the
 * call, and is its answer.
 */
export async function loadFresh(
  store: EntryStore,
  filler: Filler,
  key: string,
  call: LoadSpec<unknown>,
  budget: Budget,
): Promise<unknown> {
  let text: Buffer | null = null;
  let redisFailed = false;
  try {
    text = await store.readText(key, budget);
  } catch {
    redisFailed = true;
  }
  const seen = headerOf(text);
  return filler.load(key, call, { budget, redisFailed, seen, ...(text === null ? {} : { replace: seen }) });
}

/**
 * The load's outcome, or a {@link LoaderTimeoutError} after `ms` (undefined: no limit); the load
 * goes on, and its outcome, nobody's now, is never an unhandled rejection.
 */
export function withinHardTimeout(
  key: string,
  ms: number | undefined,
  load: Promise<unknown>,
  onTimeout: () => void,
): Promise<unknown> {
  if (ms === undefined) return load;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      load.catch(() => {});
      onTimeout();
      reject(new LoaderTimeoutError(key, ms));
    }, ms);
    load.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** What `promise` resolves within `ms`, or undefined after it (`promise` never rejects). */
export function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    void promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}
