import { LRUCache } from 'lru-cache';
import { escapeGlob } from '../cache/patterns.js';
import { multiKeyGroups, scanEveryMaster } from '../client/cluster.js';
import type { RedisLike } from '../client/types.js';
import { runScript } from '../scripts/registry.js';
import {
  type BlockMode,
  type Decision,
  decide,
  type Mode,
  type RuleSpec,
  refund,
  type StateStore,
  type WindowState,
} from './algorithms.js';
import { limiterKeys } from './keys.js';

/** What the limiter needs from a store of counters. */
export interface LimiterBackend {
  decide(id: string, mode: Mode, cost: number): Promise<Decision>;
  refund(id: string, cost: number): Promise<void>;
  reset(id: string): Promise<void>;
  resetAll(): Promise<void>;
}

/** What both backends are built from. */
export interface BackendConfig {
  /** Key prefix including the limiter's namespace, e.g. `app:rl:`. */
  base: string;
  specs: readonly RuleSpec[];
  suffixes: readonly string[];
  blockForMs: number;
  blockMode: BlockMode;
  /** A clock that replaces Redis server time (tests); undefined in production. */
  clock: (() => number) | undefined;
}

/** Counters in Redis: one script call per decision, using the server's clock. */
export class RedisBackend implements LimiterBackend {
  readonly #redis: RedisLike;
  readonly #config: BackendConfig;
  readonly #ruleArgs: Array<string | number>;

  constructor(redis: RedisLike, config: BackendConfig) {
    this.#redis = redis;
    this.#config = config;
    this.#ruleArgs = config.specs.flatMap((spec) => [spec.code, spec.limit, spec.window]);
  }

  async decide(id: string, mode: Mode, cost: number): Promise<Decision> {
    const { base, suffixes, clock, blockForMs, blockMode } = this.#config;
    const reply = (await runScript(this.#redis, 'ratelimit', limiterKeys(base, id, suffixes), [
      mode,
      clock ? clock() : '',
      cost,
      blockForMs,
      blockMode === 'exact' ? 'x' : 'r',
      ...this.#ruleArgs,
    ])) as number[];
    return parseDecision(reply);
  }

  async refund(id: string, cost: number): Promise<void> {
    const { base, suffixes, clock } = this.#config;
    await runScript(this.#redis, 'ratelimitRefund', limiterKeys(base, id, suffixes).slice(1), [
      clock ? clock() : '',
      cost,
      ...this.#ruleArgs,
    ]);
  }

  async reset(id: string): Promise<void> {
    const { base, suffixes } = this.#config;
    // One command: the keys share a hash tag, so UNLINK is Cluster-safe.
    await this.#redis.unlink(...limiterKeys(base, id, suffixes));
  }

  async resetAll(): Promise<void> {
    // SCAN on every master (never KEYS); the keys of one identity share a slot, and UNLINK takes
    // one slot's keys at a time on a Cluster.
    for await (const keys of scanEveryMaster(this.#redis, { match: `${escapeGlob(this.#config.base)}*` })) {
      for (const group of multiKeyGroups(this.#redis, keys)) await this.#redis.unlink(...group);
    }
  }
}

/** Reads the script's reply: `{ reason, now, retryAfter, then per limit: used, resetAt, retryAfter }`. */
function parseDecision(reply: number[]): Decision {
  const limits: Decision['limits'] = [];
  for (let i = 3; i < reply.length; i += 3) {
    const retryAfter = reply[i + 2] as number;
    limits.push({ allowed: retryAfter === 0, used: reply[i] as number, resetAt: reply[i + 1] as number, retryAfter });
  }
  const reason = reply[0] as Decision['reason'];
  return { allowed: reason === 0, reason, now: reply[1] as number, retryAfter: reply[2] as number, limits };
}

type Entry = WindowState | { log: number[] } | { until: number };

/**
 * Counters in this process: the same decisions as {@link RedisBackend} (a property test proves
 * it), for a single instance, development and tests, and as the `onRedisError: 'memory'`
 * fallback. Bounded: the least recently used identities are dropped beyond `maxEntries` keys.
 */
export class MemoryBackend implements LimiterBackend {
  readonly #config: BackendConfig;
  readonly #clock: () => number;
  readonly #entries: LRUCache<string, Entry>;
  readonly #store: StateStore;

  constructor(config: BackendConfig, maxEntries: number) {
    this.#config = config;
    this.#clock = config.clock ?? Date.now;
    const entries = new LRUCache<string, Entry>({ max: maxEntries });
    this.#entries = entries;
    // As in the script: expiry only cleans up, and runs on real time, so a given clock turns it off.
    const ttl = (ms: number) => (config.clock ? {} : { ttl: ms });
    const get = <T extends Entry>(key: string, field: string) => {
      const entry = entries.get(key);
      return entry && field in entry ? (entry as T) : undefined;
    };
    this.#store = {
      getWindow: (key) => get<WindowState>(key, 'w'),
      setWindow: (key, state, ms) => entries.set(key, { ...state }, ttl(ms)),
      getLog: (key) => get<{ log: number[] }>(key, 'log')?.log,
      setLog: (key, log, ms) => entries.set(key, { log }, ttl(ms)),
      getBlock: (key) => get<{ until: number }>(key, 'until')?.until,
      setBlock: (key, until, ms) => entries.set(key, { until }, ttl(ms)),
      delete: (key) => entries.delete(key),
    };
  }

  async decide(id: string, mode: Mode, cost: number): Promise<Decision> {
    const { base, suffixes, specs, blockForMs, blockMode } = this.#config;
    const [block, ...rules] = limiterKeys(base, id, suffixes);
    return decide(this.#store, block as string, rules, specs, mode, this.#clock(), cost, blockForMs, blockMode);
  }

  async refund(id: string, cost: number): Promise<void> {
    const { base, suffixes, specs } = this.#config;
    refund(this.#store, limiterKeys(base, id, suffixes).slice(1), specs, this.#clock(), cost);
  }

  async reset(id: string): Promise<void> {
    const { base, suffixes } = this.#config;
    for (const key of limiterKeys(base, id, suffixes)) this.#entries.delete(key);
  }

  async resetAll(): Promise<void> {
    this.#entries.clear();
  }

  /** Forgets everything (when Redis answers again, the fallback's counts are stale). */
  clear(): void {
    this.#entries.clear();
  }
}
