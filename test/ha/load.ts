import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedscaleError } from '../../src/index.js';

/** One call made under load: when it started and ended (`performance.now()` ms) and what it returned. */
export interface CallRecord {
  startedAt: number;
  endedAt: number;
  /** `'ok'`, or the error's code (`'ERR_TIMEOUT'`, `'ERR_REDIS'`…); `'unexpected'` for a non-redscale error. */
  outcome: string;
  /** The error's message, for a failed call. */
  message?: string;
}

/** What a load loop saw around an event (a failover, a slot move). */
export interface LoadSummary {
  calls: number;
  failures: number;
  /** Distinct outcomes of the failed calls. */
  failureCodes: string[];
  /** The longest any call took, ms: no call hangs. */
  longestCallMs: number;
  /**
   * From `since` until the first call that started after the last failure and succeeded, ms:
   * how long until calls succeed again. 0 when nothing failed.
   */
  recoveredAfterMs: number;
}

/**
 * Runs `operation` in `concurrency` loops, each call after the previous one settles (with `pauseMs`
 * between), until {@link stop}; records every call's outcome.
 */
export class LoadLoop {
  readonly records: CallRecord[] = [];
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(operation: (n: number) => Promise<unknown>, options: { concurrency?: number; pauseMs?: number } = {}) {
    let n = 0;
    this.#loops = Array.from({ length: options.concurrency ?? 2 }, async () => {
      while (this.#running) {
        const startedAt = performance.now();
        let outcome = 'ok';
        let message: string | undefined;
        try {
          await operation(n++);
        } catch (error) {
          outcome = error instanceof RedscaleError ? error.code : 'unexpected';
          message = error instanceof Error ? error.message : String(error);
        }
        this.records.push({ startedAt, endedAt: performance.now(), outcome, ...(message && { message }) });
        await sleep(options.pauseMs ?? 10);
      }
    });
  }

  /** Stops the loops once their calls in flight settle. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Calls made, failures and time to recovery, counted from `since`. */
  summary(since: number): LoadSummary {
    const after = this.records.filter((record) => record.endedAt >= since);
    const failed = after.filter((record) => record.outcome !== 'ok');
    const lastFailure = Math.max(since, ...failed.map((record) => record.startedAt));
    const firstGood = after.find((record) => record.outcome === 'ok' && record.startedAt >= lastFailure);
    return {
      calls: after.length,
      failures: failed.length,
      failureCodes: [...new Set(failed.map((record) => record.outcome))].sort(),
      longestCallMs: Math.round(Math.max(0, ...after.map((record) => record.endedAt - record.startedAt))),
      recoveredAfterMs: failed.length && firstGood ? Math.round(firstGood.endedAt - since) : failed.length ? -1 : 0,
    };
  }
}

/** Waits until `check` resolves true, polling every `everyMs`, or throws after `timeoutMs` naming `what`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  everyMs = 50,
) {
  const until = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
