/** Why a waiter woke: the key was written, its load failed elsewhere, the bus dropped, or time ran out. */
export type Wake = 'written' | 'failed' | 'dropped' | 'timeout';

/**
 * Callers waiting, in this process, for another instance to finish loading a key. The bus wakes
 * them when that instance writes the key or announces its load failed; otherwise they wake after
 * `ms` and look for themselves (polling is the fallback when the bus is down).
 */
export class FillWaiters {
  readonly #waiting = new Map<string, Set<(wake: Wake) => void>>();

  /** Resolves when `key` is announced, or after `ms`. */
  wait(key: string, ms: number): Promise<Wake> {
    return new Promise((resolve) => {
      let set = this.#waiting.get(key);
      if (!set) {
        set = new Set();
        this.#waiting.set(key, set);
      }
      const waiters = set;
      const done = (wake: Wake) => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiting.get(key) === waiters) this.#waiting.delete(key);
        resolve(wake);
      };
      const timer = setTimeout(() => done('timeout'), Math.max(1, ms));
      timer.unref?.();
      waiters.add(done);
    });
  }

  /** Wakes everyone waiting for these keys. */
  wake(keys: readonly string[], wake: Wake): void {
    for (const key of keys) {
      const waiters = this.#waiting.get(key);
      if (waiters) for (const done of [...waiters]) done(wake);
    }
  }

  /** Wakes everyone (the bus dropped: announcements may have been missed). */
  wakeAll(): void {
    for (const waiters of [...this.#waiting.values()]) for (const done of [...waiters]) done('dropped');
  }
}
