/**
 * redscale/otel — OpenTelemetry metrics and spans for every redscale primitive, from the
 * `node:diagnostics_channel` channels the core publishes on. Needs `@opentelemetry/api`.
 *
 * @packageDocumentation
 */
import { type Channel, channel, tracingChannel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { type Context, context, metrics as metricsApi, trace } from '@opentelemetry/api';
import { parseOptions } from '../common/options.js';
import {
  type CacheOperationMessage,
  CHANNELS,
  type EventMessage,
  type HealthCheckMessage,
  type LimiterCheckMessage,
  type LockOperationMessage,
  type OperationMessage,
} from '../observability/channels.js';
import { VERSION } from '../scripts/registry.js';
import { RedscaleMetrics } from './metrics.js';
import { keyGrouper, type OtelOptions, otelOptionsSchema } from './options.js';
import { RedscaleSpans } from './spans.js';

export type { KeyGrouper, OtelOptions } from './options.js';

/** A running instrumentation; {@link RedscaleInstrumentation.close} unsubscribes it. */
export interface RedscaleInstrumentation {
  /** Stops recording (unsubscribes from every channel). Metrics already recorded stay with the provider. */
  close(): void;
}

/** The instrumentation scope name metrics and spans are recorded under. */
export const INSTRUMENTATION_SCOPE = 'redscale';

interface Operation<M extends OperationMessage> {
  channel: string;
  name(message: M): string;
  attributes(message: M): Record<string, string>;
  record(metrics: RedscaleMetrics, message: M, seconds: number): void;
}

const operation = <M extends OperationMessage>(definition: Operation<M>) => definition as Operation<OperationMessage>;

const cacheOperation = (channelName: string) =>
  operation<CacheOperationMessage>({
    channel: channelName,
    name: (message) => `cache ${message.operation}`,
    attributes: (message) => ({ 'db.operation.name': message.operation }),
    record: (metrics, message, seconds) => metrics.cacheOperation(message, seconds),
  });

const lockOperation = (channelName: string) =>
  operation<LockOperationMessage>({
    channel: channelName,
    name: (message) => `lock ${message.operation}`,
    attributes: (message) => ({ 'db.operation.name': message.operation }),
    record: (metrics, message, seconds) => metrics.lockOperation(message, seconds),
  });

const OPERATIONS: Operation<OperationMessage>[] = [
  operation<LimiterCheckMessage>({
    channel: CHANNELS.limiterCheck,
    name: (message) => `ratelimit ${message.operation}`,
    attributes: (message) => ({ 'db.operation.name': message.operation }),
    record: (metrics, message, seconds) => metrics.limiterCheck(message, seconds),
  }),
  cacheOperation(CHANNELS.cacheGet),
  cacheOperation(CHANNELS.cacheSet),
  cacheOperation(CHANNELS.cacheGetOrSet),
  cacheOperation(CHANNELS.cacheLoad),
  cacheOperation(CHANNELS.cacheInvalidate),
  lockOperation(CHANNELS.lockAcquire),
  lockOperation(CHANNELS.lockExtend),
  lockOperation(CHANNELS.lockRelease),
  operation<HealthCheckMessage>({
    channel: CHANNELS.healthCheck,
    name: () => 'health check',
    attributes: () => ({ 'db.operation.name': 'check' }),
    record: (metrics, message, seconds) => metrics.healthCheck(message, seconds),
  }),
];

/**
 * Records redscale's metrics and spans with OpenTelemetry, following its semantic conventions
 * where they exist (`db.system` `redis`, `db.operation.name`, `error.type`, durations as
 * histograms in seconds). Covers every RateLimiter, Cache, Lock and RedisHealth in the process,
 * whenever they were created. Attributes never carry a raw key or identity: use `keyGroups`.
 *
 * @example
 * ```ts
 * import { instrumentRedscale } from 'redscale/otel'
 * const instrumentation = instrumentRedscale({ keyGroups: [[/^user:/, 'user']] })
 * // … on shutdown
 * instrumentation.close()
 * ```
 * @throws InvalidOptionError when an option is invalid.
 */
export function instrumentRedscale(options: OtelOptions = {}): RedscaleInstrumentation {
  const resolved = parseOptions(otelOptionsSchema, options, 'instrumentRedscale()');
  const group = keyGrouper(resolved.keyGroups, resolved.maxKeyGroups);
  const recorder = resolved.metrics
    ? new RedscaleMetrics(
        (resolved.meterProvider ?? metricsApi.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE, VERSION),
        group,
      )
    : undefined;
  const spans = resolved.traces
    ? new RedscaleSpans(
        (resolved.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE, VERSION),
      )
    : undefined;
  const unsubscribes: Array<() => void> = [];

  for (const definition of OPERATIONS) {
    const started = new WeakMap<object, number>();
    const handlers = {
      start: guarded((message: OperationMessage) => {
        started.set(message, performance.now());
      }),
      end() {},
      asyncStart() {},
      asyncEnd: guarded((message: OperationMessage) => {
        const since = started.get(message);
        started.delete(message);
        if (recorder && since !== undefined) definition.record(recorder, message, (performance.now() - since) / 1000);
        spans?.end(message);
      }),
      error() {},
    };
    const tracer = tracingChannel<unknown, OperationMessage>(definition.channel);
    tracer.subscribe(handlers as never);
    unsubscribes.push(() => tracer.unsubscribe(handlers as never));
    if (spans) {
      // The span starts as the operation's context is entered, so what the operation runs (a
      // loader under getOrSet) starts its own spans under it.
      const start = tracer.start as unknown as Channel<Context, unknown>;
      start.bindStore(spans.current, (message) => {
        const parent = spans.current.getStore() ?? context.active();
        try {
          const operation = message as OperationMessage;
          const attributes = definition.attributes(operation);
          const key = keyOf(operation);
          const keyGroup = key === undefined ? undefined : group?.(key);
          return spans.start(
            definition.name(operation),
            operation,
            keyGroup ? { ...attributes, 'redscale.key_group': keyGroup } : attributes,
          );
        } catch {
          return parent; // a malformed message: no span, the caller's context unchanged
        }
      });
      unsubscribes.push(() => start.unbindStore(spans.current));
    }
  }

  if (recorder) {
    const events: Array<[string, (message: EventMessage) => void]> = [
      [CHANNELS.limiterEvents, (message) => recorder.limiterEvent(message)],
      [CHANNELS.cacheEvents, (message) => recorder.cacheEvent(message)],
      [CHANNELS.lockEvents, (message) => recorder.lockEvent(message)],
    ];
    for (const [name, handle] of events) {
      const listener = guarded((message: unknown) => handle(message as EventMessage));
      channel(name).subscribe(listener);
      unsubscribes.push(() => channel(name).unsubscribe(listener));
    }
  }

  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
    },
  };
}

/**
 * A subscriber that never throws: diagnostics_channel rethrows a subscriber's error on the next
 * tick, where it would crash the process — for a malformed message someone else published on a
 * redscale channel, or a failing SDK. Telemetry is dropped instead.
 */
function guarded<A extends unknown[]>(handler: (...args: A) => void): (...args: A) => void {
  return (...args) => {
    try {
      handler(...args);
    } catch {
      // Dropped: observability must never take the service down.
    }
  };
}

/** The key, identity or first resource an operation is about, for `keyGroups`. */
function keyOf(message: OperationMessage): string | undefined {
  const found = message as { id?: string; key?: string; resources?: readonly string[] };
  return found.id ?? found.key ?? found.resources?.[0];
}
