import type { EventEmitter } from 'node:events';
import type { RedscaleError } from '../common/errors.js';
import { type CacheOperationMessage, eventChannels } from '../observability/channels.js';
import { EventSink } from '../observability/events.js';
import { type Logger, logBreaker, logError, logLine } from '../observability/logger.js';
import type { BusMessageError } from './bus-protocol.js';
import { type CacheEvents, emptyStats } from './stats.js';

/** What a cache reports with: its prefix, and where failures go besides the counters. */
export interface ReporterOptions {
  prefix: string;
  logger?: Logger | undefined;
  onError?: ((error: RedscaleError) => void) | undefined;
}

/**
 * The one place a cache's counters, events, log lines and trace outcomes come from, so that
 * `stats()`, `on(...)`, the diagnostics channel and the logger always agree.
 */
export class CacheReporter {
  /** The counters `stats()` returns (mutable: the cache's parts count into them). */
  readonly stats = emptyStats();
  readonly #events: EventSink<CacheEvents>;
  readonly #options: ReporterOptions;

  constructor(emitter: EventEmitter<CacheEvents>, options: ReporterOptions) {
    this.#options = options;
    this.#events = new EventSink<CacheEvents>(emitter, eventChannels.cache, options.prefix);
  }

  /** Sends an event when someone listens (on the emitter or the event channel); for rare events; the payload is built by the caller. */
  send<K extends keyof CacheEvents & string>(name: K, payload: CacheEvents[K][0]): void {
    if (this.#events.wants(name)) this.#events.send(name, payload);
  }

  /** A Redis call failed or timed out: counted once, then `onError`, the logger and the event. */
  redisError(error: RedscaleError): void {
    this.stats.redisErrors++;
    this.#options.onError?.(error);
    logError(this.#options.logger, 'warn', error, { prefix: this.#options.prefix });
    this.send('redis-error', { error });
  }

  /** A bus message was dropped; `report` says whether it deserves `onError` (hostile or foreign input). */
  busMessageDropped(error: BusMessageError, report: boolean): void {
    this.stats.busMessagesDropped++;
    if (!report) return;
    this.#options.onError?.(error);
    logError(this.#options.logger, 'warn', error, { prefix: this.#options.prefix });
    this.send('bus-message-dropped', { error });
  }

  /** The bus stopped delivering (L1 was flushed). */
  busDown(cause: 'drop' | 'heartbeat'): void {
    this.stats.busDrops++;
    if (cause === 'heartbeat') this.stats.heartbeatsMissed++;
    logLine(this.#options.logger, 'warn', 'redscale: cache invalidation bus stopped delivering: L1 flushed', {
      prefix: this.#options.prefix,
      cause,
    });
    this.send('bus-drop', { cause });
  }

  /** A node's circuit breaker opened or closed. */
  breakerChanged(node: string, state: 'open' | 'closed'): void {
    if (state === 'open') this.stats.breakerOpens++;
    logBreaker(this.#options.logger, 'cache', node, state, this.#options.prefix);
    this.send('breaker', { node, state });
  }

  /** A value was served; `message` (when traced) learns where it came from. */
  hit(key: string, layer: 'l1' | 'l2', stale: boolean, message: CacheOperationMessage | undefined): void {
    if (layer === 'l1') this.stats.l1Hits++;
    else this.stats.l2Hits++;
    if (stale) this.stats.staleServed++;
    if (message) message.outcome = stale ? 'stale' : layer;
    // The hot path: no payload is built unless someone listens.
    if (this.#events.wants('hit')) this.#events.send('hit', { key, layer, stale });
  }

  /** No usable value was found. */
  miss(key: string, message: CacheOperationMessage | undefined): void {
    this.stats.misses++;
    if (message) message.outcome = 'miss';
    if (this.#events.wants('miss')) this.#events.send('miss', { key });
  }

  /** The share of reads answered from the cache, or `null` before the first read. */
  hitRate(): number | null {
    const { l1Hits, l2Hits, misses } = this.stats;
    const reads = l1Hits + l2Hits + misses;
    return reads === 0 ? null : (l1Hits + l2Hits) / reads;
  }
}
