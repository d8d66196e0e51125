import type { EventEmitter } from 'node:events';
import type { RedscaleError } from '../common/errors.js';
import { eventChannels } from '../observability/channels.js';
import { EventSink } from '../observability/events.js';
import { type Logger, logBreaker, logError } from '../observability/logger.js';
import type { Mode } from './algorithms.js';
import type { RateLimitResult } from './result.js';
import { emptyLimiterStats, type RateLimiterEvents } from './stats.js';

/** What a limiter reports with: its prefix, and where failures go besides the counters. */
export interface LimiterReporterOptions {
  prefix: string;
  logger?: Logger | undefined;
  onError?: ((error: RedscaleError) => void) | undefined;
}

/**
 * The one place a limiter's counters, events and log lines come from, so that `stats()`,
 * `on(...)`, the diagnostics channel and the logger always agree.
 */
export class LimiterReporter {
  /** The counters `stats()` returns. */
  readonly stats = emptyLimiterStats();
  readonly #events: EventSink<RateLimiterEvents>;
  readonly #options: LimiterReporterOptions;

  constructor(emitter: EventEmitter<RateLimiterEvents>, options: LimiterReporterOptions) {
    this.#options = options;
    this.#events = new EventSink<RateLimiterEvents>(emitter, eventChannels.limiter, options.prefix);
  }

  /** Counts an answer and reports it (no payload is built unless someone listens); returns it. */
  decided(mode: Mode, id: string, result: RateLimitResult): RateLimitResult {
    const stats = this.stats;
    if (result.error) stats.fallbacks++;
    if (result.allowed) stats.allowed++;
    else if (result.reason === 'limit') stats.limited++;
    else if (result.reason === 'blocked') stats.blocked++;
    else if (result.reason === 'local-block') stats.localBlocked++;
    if (this.#events.wants('decision')) this.#events.send('decision', { id, operation: mode, result });
    return result;
  }

  /** A Redis call failed or timed out: counted once, then `onError`, the logger and the event. */
  redisError(error: RedscaleError): void {
    this.stats.redisErrors++;
    this.#options.onError?.(error);
    logError(this.#options.logger, 'warn', error, { prefix: this.#options.prefix });
    if (this.#events.wants('redis-error')) this.#events.send('redis-error', { error });
  }

  /** A node's circuit breaker opened or closed. */
  breakerChanged(node: string, state: 'open' | 'closed'): void {
    if (state === 'open') this.stats.breakerOpens++;
    logBreaker(this.#options.logger, 'rate limiter', node, state, this.#options.prefix);
    if (this.#events.wants('breaker')) this.#events.send('breaker', { node, state });
  }
}
