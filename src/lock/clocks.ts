import { nodeOf } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { ServerClock } from '../common/server-clock.js';

/** More nodes than any Cluster a lock talks to; past it (many failovers) the clocks start afresh. */
const MAX_NODES = 1_024;

/**
 * One {@link ServerClock} per Redis node: the masters of a Cluster need not agree on the time, and
 * a lock script compares its caller's deadline with the clock of the node it runs on.
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
    const node = nodeOf(this.#redis, key);
    let clock = this.#byNode.get(node);
    if (!clock) {
      if (this.#byNode.size >= MAX_NODES) this.#byNode.clear();
      clock = new ServerClock();
      this.#byNode.set(node, clock);
    }
    return clock;
  }
}
