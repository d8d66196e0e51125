import { LRUCache } from 'lru-cache';
import { parseOptions } from '../common/options.js';
import { ruleSuffix } from './keys.js';
import type { LimitShape } from './memory-backend.js';
import { limitsSchema } from './options.js';
import type { RedisBackend } from './redis-backend.js';
import { algorithmCode, capacityOf, type LimitRule } from './rules.js';

/** One set of limits a limiter decides with: its own, or a call's (`ConsumeOptions.limits`). */
export interface Variant extends LimitShape {
  /** The limits, validated and frozen, in order. */
  readonly rules: readonly LimitRule[];
  /** The largest cost a call may have: the smallest capacity (a GCRA limit's burst). */
  readonly capacity: number;
  /** Whether `hit()` may count past the limits (no sliding log, no GCRA). */
  readonly hitAllowed: boolean;
  /** Identifies the limits, numbers and names included. */
  readonly key: string;
  /** The Redis backend for these limits (its script plan and batcher), or none without Redis. */
  readonly redis: RedisBackend | undefined;
}

/** The most distinct call limits a limiter keeps ready (a plan each); beyond, the least used go. */
const MAX_VARIANTS = 256;

/**
 * The limits a limiter decides with, per call. Its own are built once; a call's are validated as
 * strictly as the constructor's, once per array or rule object given, and share a plan (script
 * arguments, batcher) with every call of equal limits. The state is keyed by algorithm and window
 * only, so every variant of an identity reads and writes the same counters.
 */
export class Variants {
  /** The limiter's own limits. */
  readonly own: Variant;
  readonly #backend: (shape: LimitShape) => RedisBackend | undefined;
  readonly #byObject = new WeakMap<object, Variant>();
  readonly #byKey = new LRUCache<string, Variant>({ max: MAX_VARIANTS });

  constructor(rules: readonly LimitRule[], backend: (shape: LimitShape) => RedisBackend | undefined) {
    this.#backend = backend;
    this.own = this.#build(rules);
  }

  /** The variant for a call's `limits` (the limiter's own when undefined). */
  of(limits: LimitRule | readonly LimitRule[] | undefined, where: string): Variant {
    if (limits === undefined) return this.own;
    if (limits !== null && typeof limits === 'object') {
      const known = this.#byObject.get(limits);
      if (known) return known;
    }
    const rules = parseOptions(limitsSchema, limits, where) as LimitRule[];
    const key = rules.map(describe).join('|');
    let variant = key === this.own.key ? this.own : this.#byKey.get(key);
    if (!variant) {
      variant = this.#build(rules);
      this.#byKey.set(key, variant);
    }
    if (limits !== null && typeof limits === 'object') this.#byObject.set(limits, variant);
    return variant;
  }

  #build(rules: readonly LimitRule[]): Variant {
    const shape: LimitShape = {
      specs: rules.map((rule) => ({
        code: algorithmCode(rule),
        limit: rule.limit,
        window: rule.windowMs,
        ...(rule.whenExceeded && rule.whenExceeded !== 'keep' && { exceeded: rule.whenExceeded }),
        ...(rule.burst !== undefined && { burst: rule.burst }),
      })),
      suffixes: rules.map(ruleSuffix),
    };
    return Object.freeze({
      ...shape,
      rules: Object.freeze([...rules]),
      capacity: Math.min(...rules.map(capacityOf)),
      hitAllowed: !rules.some((rule) => rule.algorithm === 'sliding-log' || rule.algorithm === 'gcra'),
      key: rules.map(describe).join('|'),
      redis: this.#backend(shape),
    });
  }
}

/** Everything about a limit that changes a decision or a result. */
function describe(rule: LimitRule): string {
  return `${ruleSuffix(rule)}:${rule.limit}:${rule.burst ?? ''}:${rule.whenExceeded ?? ''}:${rule.name}`;
}
