import type { EventEmitter } from 'node:events';
import type { RedscaleError } from '../common/errors.js';
import { eventChannels, type LockOperationMessage } from '../observability/channels.js';
import { EventSink } from '../observability/events.js';
import { type Logger, logError } from '../observability/logger.js';
import { type LockLostError, LockTimeoutError } from './errors.js';
import { emptyLockStats, type LockEvents } from './stats.js';

/** What a lock reports with: its prefix, and where failures go besides the counters. */
export interface LockReporterOptions {
  prefix: string;
  logger?: Logger | undefined;
  onError?: ((error: RedscaleError) => void) | undefined;
}

/**
 * The one place a lock's counters, events, log lines and trace details come from, so that
 * `stats()`, `on(...)`, the diagnostics channel and the logger always agree.
 */
export class LockReporter {
  /** The counters `stats()` returns. */
  readonly stats = emptyLockStats();
  readonly #events: EventSink<LockEvents>;
  readonly #options: LockReporterOptions;

  constructor(emitter: EventEmitter<LockEvents>, options: LockReporterOptions) {
    this.#options = options;
    this.#events = new EventSink<LockEvents>(emitter, eventChannels.lock, options.prefix);
  }

  /** Every absorbed Redis failure: counted, then to `onError`, the logger and the events. */
  readonly redisError = (error: RedscaleError): void => {
    this.stats.redisErrors++;
    this.#options.onError?.(error);
    logError(this.#options.logger, 'warn', error, { prefix: this.#options.prefix });
    if (this.#events.wants('redis-error')) this.#events.send('redis-error', { error });
  };

  /** The first attempt of an acquisition found the resources held. */
  contended(resources: readonly string[]): void {
    this.stats.contended++;
    if (this.#events.wants('contention')) this.#events.send('contention', { resources });
  }

  /** An acquisition succeeded; `message` (when traced) learns how long it waited. */
  acquired(
    resources: readonly string[],
    waitedMs: number,
    attempts: number,
    fences: ReadonlyMap<string, number>,
    message: LockOperationMessage | undefined,
  ): void {
    this.stats.acquired++;
    if (message) {
      message.waitedMs = waitedMs;
      message.attempts = attempts;
    }
    if (this.#events.wants('acquire')) {
      const fence = fences.get(resources[0] ?? '') ?? 0;
      this.#events.send('acquire', { resources, waitedMs, attempts, fence });
    }
  }

  /** An acquisition failed: a timeout (held all along) or another failure. */
  acquireFailed(
    resources: readonly string[],
    error: unknown,
    waitedMs: number,
    message: LockOperationMessage | undefined,
    attempts: number,
  ): void {
    if (message) {
      message.waitedMs = waitedMs;
      message.attempts = attempts;
    }
    if (!(error instanceof LockTimeoutError)) {
      this.stats.failures++;
      return;
    }
    this.stats.timeouts++;
    if (this.#events.wants('timeout')) this.#events.send('timeout', { resources, waitedMs });
  }

  /** A holder's lease was extended. */
  extended(resources: readonly string[], ttlMs: number): void {
    this.stats.extended++;
    if (this.#events.wants('extend')) this.#events.send('extend', { resources, ttlMs });
  }

  /** A release ran; `held` says whether the holder still had the lock. */
  released(resources: readonly string[], held: boolean): void {
    if (held) this.stats.released++;
    if (this.#events.wants('release')) this.#events.send('release', { resources, held });
  }

  /** A holder learned it lost the lock. */
  lost(resources: readonly string[], error: LockLostError): void {
    this.stats.lost++;
    logError(this.#options.logger, 'error', error, { prefix: this.#options.prefix });
    if (this.#events.wants('lost')) this.#events.send('lost', { resources, error });
  }
}
