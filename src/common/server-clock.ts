import { performance } from 'node:perf_hooks';

/**
 * What this process knows of a Redis server's clock, learned from the server times its scripts
 * return, so a call can carry its deadline to Redis in the server's own time and a script that
 * runs after its caller gave up (ioredis replays commands queued or unanswered across a
 * reconnection) can refuse to act.
 *
 * Each sample is stamped when its reply arrives, so the estimate is behind the server by at most
 * that reply's network time: a deadline computed from it is early, never late. Until a first
 * sample, the wall clock stands in (synchronised clocks make it close; a script that finds the
 * deadline already past returns its own time, and the caller learns from that).
 */
export class ServerClock {
  /** Server epoch ms minus local `performance.now()`, from the latest sample. */
  #offset: number | undefined;

  /** Whether a sample has been taken. */
  get learned(): boolean {
    return this.#offset !== undefined;
  }

  /** Learns from a server time (epoch ms) that arrived at local `receivedAt` (`performance.now()`). */
  learn(serverMs: number, receivedAt: number = performance.now()): void {
    if (Number.isFinite(serverMs)) this.#offset = serverMs - receivedAt;
  }

  /** The server time (epoch ms) at local time `at` (`performance.now()`), by the latest sample. */
  serverTimeAt(at: number): number {
    return Math.floor(at + (this.#offset ?? Date.now() - performance.now()));
  }
}
