import type { Attributes, Histogram, Meter, MetricOptions, ObservableResult } from '@opentelemetry/api';
import type {
  CacheOperationMessage,
  EventMessage,
  HealthCheckMessage,
  LimiterCheckMessage,
  LockOperationMessage,
} from '../observability/channels.js';
import type { KeyGrouper } from './options.js';

/** Every metric carries these: the semantic conventions' database system, and the instance's prefix. */
function base(prefix: string): Attributes {
  return { 'db.system': 'redis', 'redscale.prefix': prefix };
}

type Primitive = 'ratelimit' | 'cache' | 'lock';

/**
 * A count kept in the process and reported when metrics are collected (an ObservableCounter):
 * counting is one Map lookup instead of an SDK call that hashes the attributes every time, which
 * matters next to operations of a microsecond (an L1 hit). Series are as bounded as the attributes.
 */
class Tally {
  readonly #series = new Map<string, { attributes: Attributes; value: number }>();

  constructor(meter: Meter, name: string, options: MetricOptions) {
    meter.createObservableCounter(name, options).addCallback((result: ObservableResult) => {
      for (const { attributes, value } of this.#series.values()) result.observe(value, attributes);
    });
  }

  add(value: number, attributes: Attributes): void {
    let key = '';
    for (const name in attributes) key += `${name}\u0000${String(attributes[name])}\u0000`;
    const series = this.#series.get(key);
    if (series) series.value += value;
    else this.#series.set(key, { attributes, value });
  }
}

/** Buckets in seconds for Redis-bound operations (sub-millisecond to a few seconds). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A value's `code` if it is a RedscaleError-like error, else `'other'`. */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : 'other';
}

const HEALTH_STATUSES = ['up', 'degraded', 'down'] as const;

/**
 * Turns redscale's channel messages into OpenTelemetry metrics. Attributes are bounded: outcomes,
 * reasons, layers, node addresses, prefixes and key groups, never a raw key or identity.
 */
export class RedscaleMetrics {
  readonly #group: KeyGrouper | undefined;
  readonly #decisions: Tally;
  readonly #limiterDuration: Histogram;
  readonly #hits: Tally;
  readonly #misses: Tally;
  readonly #loads: Tally;
  readonly #loadErrors: Tally;
  readonly #loadDuration: Histogram;
  readonly #invalidations: Tally;
  readonly #busDrops: Tally;
  readonly #busMessagesDropped: Tally;
  readonly #cacheDuration: Histogram;
  readonly #acquisitions: Tally;
  readonly #wait: Histogram;
  readonly #contentions: Tally;
  readonly #losses: Tally;
  readonly #extensions: Tally;
  readonly #releases: Tally;
  readonly #lockDuration: Histogram;
  readonly #redisErrors: Tally;
  readonly #breakerTransitions: Tally;
  readonly #healthDuration: Histogram;
  /** Last known breaker state per primitive, prefix and node (1 open, 0 closed). */
  readonly #breakers = new Map<string, { attributes: Attributes; open: number }>();
  /** Last health status and PING latency per prefix. */
  readonly #health = new Map<string, { status: string; latencySeconds: number | null }>();

  constructor(meter: Meter, group: KeyGrouper | undefined) {
    this.#group = group;
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } };
    this.#decisions = new Tally(meter, 'redscale.ratelimit.decisions', {
      description: 'Rate-limit answers, by outcome (allowed, refused), reason and source',
      unit: '{decision}',
    });
    this.#limiterDuration = meter.createHistogram('redscale.ratelimit.duration', {
      description: 'Duration of rate-limit checks',
      ...seconds,
    });
    this.#hits = new Tally(meter, 'redscale.cache.hits', {
      description: 'Cache reads answered from the cache, by layer (l1, l2, stale)',
      unit: '{hit}',
    });
    this.#misses = new Tally(meter, 'redscale.cache.misses', {
      description: 'Cache reads that found nothing usable',
      unit: '{miss}',
    });
    this.#loads = new Tally(meter, 'redscale.cache.loads', {
      description: 'Loader runs that succeeded',
      unit: '{load}',
    });
    this.#loadErrors = new Tally(meter, 'redscale.cache.load.errors', {
      description: 'Loader runs that threw',
      unit: '{error}',
    });
    this.#loadDuration = meter.createHistogram('redscale.cache.load.duration', {
      description: 'Duration of successful loader runs',
      ...seconds,
    });
    this.#invalidations = new Tally(meter, 'redscale.cache.invalidations', {
      description: 'Invalidation calls, by kind (keys, tags, pattern)',
      unit: '{invalidation}',
    });
    this.#busDrops = new Tally(meter, 'redscale.cache.bus.drops', {
      description: 'Times the invalidation bus stopped delivering (L1 flushed), by cause',
      unit: '{drop}',
    });
    this.#busMessagesDropped = new Tally(meter, 'redscale.cache.bus.messages_dropped', {
      description: 'Malformed, too large or newer-format bus messages dropped',
      unit: '{message}',
    });
    this.#cacheDuration = meter.createHistogram('redscale.cache.duration', {
      description: 'Duration of cache calls, by operation and outcome',
      ...seconds,
    });
    this.#acquisitions = new Tally(meter, 'redscale.lock.acquisitions', {
      description: 'Lock acquisitions, by outcome (acquired, timeout, error)',
      unit: '{acquisition}',
    });
    this.#wait = meter.createHistogram('redscale.lock.wait.duration', {
      description: 'Time from asking for a lock to getting it (or giving up)',
      ...seconds,
    });
    this.#contentions = new Tally(meter, 'redscale.lock.contentions', {
      description: 'Acquisitions that found the lock held',
      unit: '{acquisition}',
    });
    this.#losses = new Tally(meter, 'redscale.lock.losses', {
      description: 'Locks lost while held, by reason (expired, not-held)',
      unit: '{loss}',
    });
    this.#extensions = new Tally(meter, 'redscale.lock.extensions', {
      description: 'Lock extensions granted',
      unit: '{extension}',
    });
    this.#releases = new Tally(meter, 'redscale.lock.releases', {
      description: 'Lock releases, by whether the lock was still held',
      unit: '{release}',
    });
    this.#lockDuration = meter.createHistogram('redscale.lock.duration', {
      description: 'Duration of lock calls (acquire includes waiting), by operation',
      ...seconds,
    });
    this.#redisErrors = new Tally(meter, 'redscale.redis.errors', {
      description: 'Redis calls that failed or timed out, by primitive and error type',
      unit: '{error}',
    });
    this.#breakerTransitions = new Tally(meter, 'redscale.circuit_breaker.transitions', {
      description: 'Circuit breaker state changes per Redis node',
      unit: '{transition}',
    });
    meter
      .createObservableGauge('redscale.circuit_breaker.open', {
        description: 'Whether the circuit breaker of a Redis node is open (1) or closed (0)',
        unit: '1',
      })
      .addCallback((result: ObservableResult) => {
        for (const { attributes, open } of this.#breakers.values()) result.observe(open, attributes);
      });
    this.#healthDuration = meter.createHistogram('redscale.health.check.duration', {
      description: 'Duration of Redis health checks',
      ...seconds,
    });
    meter
      .createObservableGauge('redscale.health.status', {
        description: 'Last Redis health status: 1 for the current status (up, degraded, down), 0 for the others',
        unit: '1',
      })
      .addCallback((result: ObservableResult) => {
        for (const [prefix, { status }] of this.#health) {
          for (const candidate of HEALTH_STATUSES) {
            result.observe(candidate === status ? 1 : 0, { ...base(prefix), 'redscale.health.status': candidate });
          }
        }
      });
    meter
      .createObservableGauge('redscale.health.latency', {
        description: 'Slowest PING round trip of the last health check',
        unit: 's',
      })
      .addCallback((result: ObservableResult) => {
        for (const [prefix, { latencySeconds }] of this.#health) {
          if (latencySeconds !== null) result.observe(latencySeconds, base(prefix));
        }
      });
  }

  /** The attributes of an operation on `key`, with its group when `keyGroups` names one. */
  #keyed(prefix: string, key: string | undefined): Attributes {
    const attributes = base(prefix);
    const group = key === undefined ? undefined : this.#group?.(key);
    if (group !== undefined) attributes['redscale.key_group'] = group;
    return attributes;
  }

  /** A limiter check settled. */
  limiterCheck(message: LimiterCheckMessage, seconds: number): void {
    const attributes = this.#keyed(message.prefix, message.id);
    attributes['db.operation.name'] = message.operation;
    const result = message.result;
    if (result) {
      attributes['redscale.ratelimit.outcome'] = result.allowed ? 'allowed' : 'refused';
      attributes['redscale.ratelimit.source'] = result.source;
    } else {
      attributes['error.type'] = errorType(message.error);
    }
    this.#limiterDuration.record(seconds, attributes);
  }

  /** An event of a RateLimiter. */
  limiterEvent(message: EventMessage): void {
    const { prefix, event } = message;
    if (event === 'decision') {
      const { id, operation, result } = message.payload as {
        id: string;
        operation: string;
        result: { allowed: boolean; reason: string; source: string; error?: unknown };
      };
      const attributes = this.#keyed(prefix, id);
      attributes['db.operation.name'] = operation;
      attributes['redscale.ratelimit.outcome'] = result.allowed ? 'allowed' : 'refused';
      // A fallback's answer is reported as such, whatever it decided: the dashboard must see Redis was skipped.
      attributes['redscale.ratelimit.reason'] = result.error ? 'fallback' : result.reason;
      attributes['redscale.ratelimit.source'] = result.source;
      this.#decisions.add(1, attributes);
    } else this.#common('ratelimit', message);
  }

  /** A cache call settled. */
  cacheOperation(message: CacheOperationMessage, seconds: number): void {
    const attributes = this.#keyed(message.prefix, message.key);
    attributes['db.operation.name'] = message.operation;
    if (message.outcome) attributes['redscale.cache.outcome'] = message.outcome;
    if (message.error !== undefined) attributes['error.type'] = errorType(message.error);
    this.#cacheDuration.record(seconds, attributes);
  }

  /** An event of a Cache. */
  cacheEvent(message: EventMessage): void {
    const { prefix, event } = message;
    const payload = message.payload as Record<string, unknown>;
    switch (event) {
      case 'hit': {
        const attributes = this.#keyed(prefix, payload.key as string);
        attributes['redscale.cache.layer'] = payload.stale ? 'stale' : (payload.layer as string);
        this.#hits.add(1, attributes);
        return;
      }
      case 'miss':
        this.#misses.add(1, this.#keyed(prefix, payload.key as string));
        return;
      case 'load': {
        const attributes = this.#keyed(prefix, payload.key as string);
        this.#loads.add(1, attributes);
        this.#loadDuration.record((payload.durationMs as number) / 1000, attributes);
        return;
      }
      case 'load-error': {
        const attributes = this.#keyed(prefix, payload.key as string);
        attributes['error.type'] = errorType(payload.error);
        this.#loadErrors.add(1, attributes);
        return;
      }
      case 'invalidate': {
        const kind = payload.keys ? 'keys' : payload.tags ? 'tags' : 'pattern';
        this.#invalidations.add(1, { ...base(prefix), 'redscale.cache.invalidation': kind });
        return;
      }
      case 'bus-drop':
        this.#busDrops.add(1, { ...base(prefix), 'redscale.cache.bus.cause': payload.cause as string });
        return;
      case 'bus-message-dropped':
        this.#busMessagesDropped.add(1, base(prefix));
        return;
      default:
        this.#common('cache', message);
    }
  }

  /** A lock call settled. */
  lockOperation(message: LockOperationMessage, seconds: number): void {
    const attributes = this.#keyed(message.prefix, message.resources[0]);
    attributes['db.operation.name'] = message.operation;
    if (message.error !== undefined) attributes['error.type'] = errorType(message.error);
    this.#lockDuration.record(seconds, attributes);
    const code = errorType(message.error);
    // Timeouts come as events (with the wait); an acquisition that failed otherwise is counted here.
    if (message.operation === 'acquire' && message.error !== undefined && code !== 'ERR_LOCK_TIMEOUT') {
      const failed = this.#keyed(message.prefix, message.resources[0]);
      failed['redscale.lock.outcome'] = 'error';
      failed['error.type'] = code;
      this.#acquisitions.add(1, failed);
    }
  }

  /** An event of a Lock. */
  lockEvent(message: EventMessage): void {
    const { prefix, event } = message;
    const payload = message.payload as Record<string, unknown>;
    const attributes = this.#keyed(prefix, (payload.resources as readonly string[] | undefined)?.[0]);
    switch (event) {
      case 'acquire':
      case 'timeout':
        attributes['redscale.lock.outcome'] = event === 'acquire' ? 'acquired' : 'timeout';
        this.#acquisitions.add(1, attributes);
        this.#wait.record((payload.waitedMs as number) / 1000, attributes);
        return;
      case 'contention':
        this.#contentions.add(1, attributes);
        return;
      case 'lost':
        attributes['redscale.lock.loss_reason'] = (payload.error as { reason?: string }).reason ?? 'unknown';
        this.#losses.add(1, attributes);
        return;
      case 'extend':
        this.#extensions.add(1, attributes);
        return;
      case 'release':
        attributes['redscale.lock.held'] = payload.held === true;
        this.#releases.add(1, attributes);
        return;
      default:
        this.#common('lock', message);
    }
  }

  /** A health check settled. */
  healthCheck(message: HealthCheckMessage, seconds: number): void {
    const report = message.result;
    const attributes = base(message.prefix);
    if (report) attributes['redscale.health.status'] = report.status;
    this.#healthDuration.record(seconds, attributes);
    this.#health.set(message.prefix, {
      status: report?.status ?? 'down',
      latencySeconds: report?.latencyMs == null ? null : report.latencyMs / 1000,
    });
  }

  /** Events every primitive shares: Redis errors and breaker changes. */
  #common(primitive: Primitive, message: EventMessage): void {
    const payload = message.payload as Record<string, unknown>;
    if (message.event === 'redis-error') {
      const error = payload.error as { context?: Record<string, unknown> } | undefined;
      const attributes = base(message.prefix);
      attributes['redscale.primitive'] = primitive;
      attributes['error.type'] = errorType(error);
      const node = error?.context?.node;
      if (typeof node === 'string') attributes['redscale.redis.node'] = node;
      this.#redisErrors.add(1, attributes);
    } else if (message.event === 'breaker') {
      const node = payload.node as string;
      const state = payload.state as string;
      const attributes = { ...base(message.prefix), 'redscale.primitive': primitive, 'redscale.redis.node': node };
      this.#breakers.set(`${primitive}\u0000${message.prefix}\u0000${node}`, {
        attributes,
        open: state === 'open' ? 1 : 0,
      });
      this.#breakerTransitions.add(1, { ...attributes, 'redscale.circuit_breaker.state': state });
    }
  }
}
