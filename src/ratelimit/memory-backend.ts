import { LRUCache } from 'lru-cache';
import { hashTag } from '../common/keys.js';
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

/** The limits of a call as the backends see them: specs, and their keys' suffixes. */
export interface LimitShape {
  specs: readonly RuleSpec[];
  suffixes: readonly string[];
}

/** What both backends are built from, fixed at construction. */
export interface BackendConfig extends LimitShape {
  /** Key prefix including the limiter's namespace, e.g. `app:rl:`. */
  base: string;
  blockForMs: number;
  blockMode: BlockMode;
  /** A clock that replaces Redis server time (tests); undefined in production. */
  clock: (() => number) | undefined;
}

type Entry = WindowState | { log: number[] } | { until: number };

/**
 * Counters in this process: the same decisions as the Redis scripts (a property test proves
 * it), for a single instance, development and tests, and as the `onRedisError: 'memory'`
 * fallback. Bounded: the least recently used identities are dropped beyond `maxEntries` keys.
 */
export class MemoryBackend {
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

  /** Decides one call; `shape` replaces the limiter's limits for this call (the state is shared). */
  decide(id: string, mode: Mode, cost: number, shape: LimitShape = this.#config): Decision {
    const { base, blockForMs, blockMode } = this.#config;
    const { suffixes, specs } = shape;
    const root = `${base}${hashTag(id)}:`;
    const rules = suffixes.map((suffix) => root + suffix);
    return decide(this.#store, `${root}block`, rules, specs, mode, this.#clock(), cost, blockForMs, blockMode);
  }

  refund(id: string, cost: number, shape: LimitShape = this.#config): void {
    const { base } = this.#config;
    const { suffixes, specs } = shape;
    const root = `${base}${hashTag(id)}:`;
    refund(
      this.#store,
      suffixes.map((suffix) => root + suffix),
      specs,
      this.#clock(),
      cost,
    );
  }

  reset(id: string, shape: LimitShape = this.#config): void {
    const { base } = this.#config;
    const { suffixes } = shape;
    const root = `${base}${hashTag(id)}:`;
    this.#entries.delete(`${root}block`);
    for (const suffix of suffixes) this.#entries.delete(root + suffix);
  }

  /** Forgets everything (`resetAll()`, and when Redis answers again the fallback's counts are stale). */
  clear(): void {
    this.#entries.clear();
  }
}
