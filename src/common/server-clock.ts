import { performance } from 'node:perf_hooks';
import { nodeOf } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';

/**
 * What this process knows of a Redis server's clock, learned from the server times its scripts
 * return, so a call can carry its deadline to Redis in the server's own time and a script that
 * runs after its caller gave up (ioredis replays commands queued or unanswered across a
 * reconnection) can refuse to act.
 *
 * Each sample is stamped when its reply arrives, so the estimate is behind the server by at most
 * that reply's network time: a deadline computed from it is early, never late. The most advanced
 * recent sample is kept, so one slow reply does not make deadlines needlessly early. Until a first
 * sample, the wall clock stands in (synchronised clocks make it close; a script that finds the
 * deadline already past returns its own time, and the caller learns from that).
 */
export class ServerClock {
  /** Server epoch ms minus local `performance.now()`, from the best recent sample. */
  #offset: number | undefined;
  /** When (`performance.now()`) the sample behind {@link #offset} was taken. */
  #sampledAt = 0;

  /** Whether a sample has been taken. */
  get learned(): boolean {
    return this.#offset !== undefined;
  }

  /**
   * Learns from a server time (epoch ms) that arrived at local `receivedAt` (`performance.now()`).
   * Every sample is behind the server by its reply's network time, so the most advanced one is
   * the best: a slower reply does not replace it, unless it is more than {@link SAMPLE_LIFE_MS}
   * old (clocks drift, and a server's clock may be set back).
   */
  learn(serverMs: number, receivedAt: number = performance.now()): void {
    if (!Number.isFinite(serverMs)) return;
    const offset = serverMs - receivedAt;
    if (this.#offset !== undefined && offset < this.#offset && receivedAt - this.#sampledAt < SAMPLE_LIFE_MS) return;
    this.#offset = offset;
    this.#sampledAt = receivedAt;
  }

  /** The server time (epoch ms) at local time `at` (`performance.now()`), by the best recent sample. */
  serverTimeAt(at: number): number {
    return Math.floor(at + (this.#offset ?? Date.now() - performance.now()));
  }
}

/** How long the most advanced sample is trusted over slower ones. */
export const SAMPLE_LIFE_MS = 10_000;

/** More nodes than any Cluster has; past it (many failovers) the clocks start afresh. */
const MAX_NODES = 1_024;

/**
 * One {@link ServerClock} per Redis node: the masters of a Cluster need not agree on the time, and
 * a script compares its caller's deadline with the clock of the node it runs on.
 */
export class ServerClocks {
  readonly #redis: RedisLike;
  readonly #byNode = new Map<string, ServerClock>();

  /** Clocks of the nodes behind `redis`. */
  constructor(redis: RedisLike) {
    this.#redis = redis;
  }

  /** The clock of the node that owns `key` (as the client sends it, `keyPrefix` included). */
  of(key: string): ServerClock {
    return this.ofNode(nodeOf(this.#redis, key));
  }

  /** The clock of a node by address (`host:port`, or `'standalone'`). */
  ofNode(node: string): ServerClock {
    let clock = this.#byNode.get(node);
    if (!clock) {
      if (this.#byNode.size >= MAX_NODES) this.#byNode.clear();
      clock = new ServerClock();
      this.#byNode.set(node, clock);
    }
    return clock;
  }
}
