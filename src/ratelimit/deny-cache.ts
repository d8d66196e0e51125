import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { RateLimitResult } from './result.js';

interface Refusal {
  /** When the refusal ends (`performance.now()` ms). */
  until: number;
  /** The cost that was refused: a smaller one may still fit. */
  cost: number;
  result: RateLimitResult;
}

/**
 * Refusals remembered in this process, so a refused identity is refused again without a round
 * trip. A refusal is trusted until it ends, but never longer than `maxAgeMs` after Redis gave
 * it: past that, Redis is asked again. That bounds how long this process can contradict Redis
 * after the identity was forgiven elsewhere — a `reset()` on another instance, or its keys
 * deleted by hand — without any message between instances. Bounded by `maxEntries`.
 */
export class LocalDenyCache {
  readonly #entries: LRUCache<string, Refusal>;
  readonly #maxAgeMs: number;

  constructor(maxEntries: number, maxAgeMs: number) {
    this.#entries = new LRUCache<string, Refusal>({ max: maxEntries });
    this.#maxAgeMs = maxAgeMs;
  }

  /** A refusal answered from memory for `cost`, or `undefined` when Redis must be asked. */
  get(id: string, cost: number): RateLimitResult | undefined {
    const refusal = this.#entries.get(id);
    if (!refusal || cost < refusal.cost) return undefined;
    const left = Math.ceil(refusal.until - performance.now());
    if (left <= 0) return undefined;
    const { result } = refusal;
    return {
      ...result,
      reason: 'local-block',
      source: 'local',
      retryAfter: left,
      decidedAt: result.decidedAt + (result.retryAfter - left),
    };
  }

  /** Remembers a refusal Redis gave, for at most `maxAge`. */
  remember(id: string, cost: number, result: RateLimitResult): void {
    if (result.retryAfter <= 0) return;
    this.#entries.set(
      id,
      { until: performance.now() + result.retryAfter, cost, result },
      { ttl: Math.min(result.retryAfter, this.#maxAgeMs) },
    );
  }

  /** Forgets one identity (this process reset or refunded it). */
  forget(id: string): void {
    this.#entries.delete(id);
  }

  /** Forgets every identity. */
  clear(): void {
    this.#entries.clear();
  }
}
