import { channel, tracingChannel } from 'node:diagnostics_channel';
import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Cache,
  CHANNELS,
  createClient,
  fixedWindow,
  InvalidOptionError,
  Lock,
  RateLimiter,
  RedisHealth,
} from '../../src/index.js';
import { instrumentRedscale } from '../../src/otel/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';

const rejections = unhandledRejections();

/** Every data point of one metric, as `{ attributes, value }`. */
type Point = DataPoint<unknown>;

function setupOtel() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  async function collect(): Promise<Map<string, Point[]>> {
    metricExporter.reset();
    await reader.forceFlush();
    const byName = new Map<string, Point[]>();
    for (const resource of metricExporter.getMetrics()) {
      for (const scope of resource.scopeMetrics) {
        for (const metric of scope.metrics) {
          byName.set(metric.descriptor.name, metric.dataPoints as Point[]);
          expect(scope.scope.name).toBe('redscale');
        }
      }
    }
    return byName;
  }
  return { meterProvider, tracerProvider, spanExporter, collect };
}

/** The sum of the points of `name` whose attributes include `where`. */
function sum(metrics: Map<string, Point[]>, name: string, where: Attributes = {}): number {
  const points = metrics.get(name) ?? [];
  return points
    .filter((point) => Object.entries(where).every(([key, value]) => point.attributes[key] === value))
    .reduce((total, point) => {
      const value = point.value as number | Histogram;
      return total + (typeof value === 'number' ? value : value.count);
    }, 0);
}

describe('redscale/otel', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('records limiter, cache, lock, Redis error, breaker and health metrics and spans through a scripted sequence with a Redis kill', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const otel = setupOtel();
    const instrumentation = instrumentRedscale({
      meterProvider: otel.meterProvider,
      tracerProvider: otel.tracerProvider,
      keyGroups: [
        [/^user:/, 'user'],
        [/^job:/, 'job'],
      ],
    });
    const redis = createClient({ url: server.url, onError: quiet, commandTimeout: 500 });
    const prefix = randomPrefix('otel');
    const breaker = { failureThreshold: 1, failureWindow: 0, cooldown: '1m' } as const;
    const limiter = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 2, window: '1m' }),
      onRedisError: 'memory',
      timeout: 200,
      circuitBreaker: breaker,
    });
    const cache = new Cache({ redis, prefix, l1: { maxEntries: 100 }, timeout: 200, circuitBreaker: breaker });
    const lock = new Lock({ redis, prefix, wait: 0 });
    const health = new RedisHealth({ redis, prefix, timeout: 300 });
    await cache.whenReady();
    try {
      // Limiter: 2 admitted, 1 refused by the limit, 1 refused locally (the deny cache).
      for (let i = 0; i < 4; i++) await limiter.consume('user:1');
      // Cache: a miss that loads, an L1 hit, a miss without a loader.
      expect(await cache.getOrSet('user:1', () => ({ name: 'Ada' }))).toEqual({ name: 'Ada' });
      expect(await cache.getOrSet('user:1', () => ({ name: 'other' }))).toEqual({ name: 'Ada' });
      expect(await cache.get('user:2')).toBeUndefined();
      await cache.invalidateTags(['team:1']);
      // Lock: one holder, one contender that gives up at once.
      const held = await lock.acquire('job:1');
      expect(await lock.tryAcquire('job:1')).toBeNull();
      await held.release();
      expect((await health.check()).status).not.toBe('down');

      // Redis dies: the limiter falls back to memory and opens its breaker; the cache misses.
      await server.kill();
      const fallback = await limiter.consume('user:7');
      expect(fallback.source).toBe('memory');
      expect(await cache.get('user:3')).toBeUndefined();
      await limiter.consume('user:7'); // skipped: the breaker is open
      expect((await health.check()).status).toBe('down');
      await waitUntil('the bus to drop', async () => cache.stats().busDrops > 0, 5_000);

      const metrics = await otel.collect();
      const group = { 'redscale.key_group': 'user', 'db.system': 'redis', 'redscale.prefix': prefix };
      expect(sum(metrics, 'redscale.ratelimit.decisions', { ...group, 'redscale.ratelimit.reason': 'allowed' })).toBe(
        2,
      );
      expect(
        sum(metrics, 'redscale.ratelimit.decisions', {
          ...group,
          'redscale.ratelimit.outcome': 'refused',
          'redscale.ratelimit.reason': 'limit',
          'redscale.ratelimit.source': 'redis',
        }),
      ).toBe(1);
      expect(
        sum(metrics, 'redscale.ratelimit.decisions', {
          'redscale.ratelimit.reason': 'local-block',
          'redscale.ratelimit.source': 'local',
        }),
      ).toBe(1);
      expect(
        sum(metrics, 'redscale.ratelimit.decisions', {
          'redscale.ratelimit.reason': 'fallback',
          'redscale.ratelimit.source': 'memory',
        }),
      ).toBe(2);
      expect(sum(metrics, 'redscale.ratelimit.duration', { 'db.operation.name': 'consume' })).toBe(6);

      expect(sum(metrics, 'redscale.cache.hits', { ...group, 'redscale.cache.layer': 'l1' })).toBe(1);
      expect(sum(metrics, 'redscale.cache.misses', group)).toBe(3);
      expect(sum(metrics, 'redscale.cache.loads', group)).toBe(1);
      expect(sum(metrics, 'redscale.cache.load.duration', group)).toBe(1);
      expect(sum(metrics, 'redscale.cache.invalidations', { 'redscale.cache.invalidation': 'tags' })).toBe(1);
      expect(sum(metrics, 'redscale.cache.bus.drops')).toBeGreaterThanOrEqual(1);
      expect(
        sum(metrics, 'redscale.cache.duration', { 'db.operation.name': 'getOrSet', 'redscale.cache.outcome': 'l1' }),
      ).toBe(1);
      expect(sum(metrics, 'redscale.cache.duration', { 'db.operation.name': 'load' })).toBe(1);

      const job = { 'redscale.key_group': 'job' };
      expect(sum(metrics, 'redscale.lock.acquisitions', { ...job, 'redscale.lock.outcome': 'acquired' })).toBe(1);
      expect(sum(metrics, 'redscale.lock.acquisitions', { ...job, 'redscale.lock.outcome': 'timeout' })).toBe(1);
      expect(sum(metrics, 'redscale.lock.contentions', job)).toBe(1);
      expect(sum(metrics, 'redscale.lock.wait.duration', job)).toBe(2);
      expect(sum(metrics, 'redscale.lock.releases', { ...job, 'redscale.lock.held': true })).toBe(1);

      expect(
        sum(metrics, 'redscale.redis.errors', { 'redscale.primitive': 'ratelimit', 'error.type': 'ERR_REDIS' }) +
          sum(metrics, 'redscale.redis.errors', { 'redscale.primitive': 'ratelimit', 'error.type': 'ERR_TIMEOUT' }),
      ).toBe(1);
      expect(sum(metrics, 'redscale.redis.errors', { 'redscale.primitive': 'cache' })).toBeGreaterThanOrEqual(1);
      expect(
        sum(metrics, 'redscale.circuit_breaker.open', {
          'redscale.primitive': 'ratelimit',
          'redscale.redis.node': 'standalone',
        }),
      ).toBe(1);
      expect(
        sum(metrics, 'redscale.circuit_breaker.transitions', {
          'redscale.primitive': 'ratelimit',
          'redscale.circuit_breaker.state': 'open',
        }),
      ).toBe(1);
      // The last check said down: the state set has 1 on down and 0 on the others.
      expect(sum(metrics, 'redscale.health.status', { 'redscale.health.status': 'down' })).toBe(1);
      expect(sum(metrics, 'redscale.health.status', { 'redscale.health.status': 'up' })).toBe(0);
      expect(sum(metrics, 'redscale.health.check.duration')).toBe(2);

      // Bounded cardinality: no attribute anywhere carries a raw key, identity or resource.
      for (const points of metrics.values()) {
        for (const point of points) {
          for (const value of Object.values(point.attributes)) expect(String(value)).not.toMatch(/user:|job:|team:/);
        }
      }

      const spans = otel.spanExporter.getFinishedSpans();
      const names = new Set(spans.map((span) => span.name));
      for (const name of [
        'ratelimit consume',
        'cache getOrSet',
        'cache get',
        'cache load',
        'cache invalidateTags',
        'lock acquire',
        'lock release',
        'health check',
      ]) {
        expect(names).toContain(name);
      }
      const refused = spans.find(
        (span) => span.name === 'ratelimit consume' && span.attributes['redscale.ratelimit.reason'] === 'limit',
      );
      expect(refused?.attributes).toMatchObject({
        'db.system': 'redis',
        'db.operation.name': 'consume',
        'redscale.key_group': 'user',
        'redscale.ratelimit.outcome': 'refused',
      });
      // A loader's span is a child of the getOrSet that ran it.
      const load = spans.find((span) => span.name === 'cache load');
      const parent = spans.find((span) => span.spanContext().spanId === load?.parentSpanContext?.spanId);
      expect(parent?.name).toBe('cache getOrSet');
      expect(parent?.attributes['redscale.cache.outcome']).toBe('miss');
      const acquired = spans.find((span) => span.name === 'lock acquire' && span.status.code !== 2);
      expect(acquired?.attributes['redscale.lock.fence']).toBeTypeOf('number');
      const busy = spans.find((span) => span.name === 'lock acquire' && span.status.code === 2);
      expect(busy?.attributes['error.type']).toBe('ERR_LOCK_TIMEOUT');
      for (const span of spans) {
        for (const value of Object.values(span.attributes)) expect(String(value)).not.toMatch(/user:|job:|team:/);
      }
    } finally {
      instrumentation.close();
      await cache.close();
      redis.disconnect();
    }
    expect(rejections.list).toEqual([]);
  }, 40_000);

  it('unsubscribes on close, so the core goes back to publishing nothing', async () => {
    const otel = setupOtel();
    const channel = tracingChannel(CHANNELS.limiterCheck);
    expect(channel.start.hasSubscribers).toBe(false);
    const instrumentation = instrumentRedscale({
      meterProvider: otel.meterProvider,
      tracerProvider: otel.tracerProvider,
    });
    expect(channel.start.hasSubscribers).toBe(true);
    instrumentation.close();
    expect(channel.start.hasSubscribers).toBe(false);
    const limiter = new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1m' }) });
    await limiter.consume('user:1');
    expect(otel.spanExporter.getFinishedSpans()).toEqual([]);
    expect(sum(await otel.collect(), 'redscale.ratelimit.decisions')).toBe(0);
  });

  it('bounds a keyGroups function that leaks raw keys to maxKeyGroups names, then "other"', async () => {
    const otel = setupOtel();
    const instrumentation = instrumentRedscale({
      meterProvider: otel.meterProvider,
      traces: false,
      keyGroups: (key) => key, // a mistake: every key its own group
      maxKeyGroups: 3,
    });
    try {
      const limiter = new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1m' }) });
      for (let i = 0; i < 10; i++) await limiter.consume(`id:${i}`);
      const points = (await otel.collect()).get('redscale.ratelimit.decisions') ?? [];
      const groups = new Set(points.map((point) => point.attributes['redscale.key_group']));
      expect(groups).toEqual(new Set(['id:0', 'id:1', 'id:2', 'other']));
      expect(sum(await otel.collect(), 'redscale.ratelimit.decisions', { 'redscale.key_group': 'other' })).toBe(7);
    } finally {
      instrumentation.close();
    }
  });

  it('drops malformed messages published on its channels instead of throwing (which would crash the process)', async () => {
    const otel = setupOtel();
    const instrumentation = instrumentRedscale({
      meterProvider: otel.meterProvider,
      tracerProvider: otel.tracerProvider,
    });
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      for (const name of [CHANNELS.cacheEvents, CHANNELS.limiterEvents, CHANNELS.lockEvents]) {
        for (const message of [null, 42, { event: 'hit' }, { prefix: 'x', event: 'decision', payload: null }]) {
          channel(name).publish(message);
        }
      }
      const tracer = tracingChannel(CHANNELS.lockAcquire);
      tracer.start.publish({ prefix: 'x' });
      tracer.asyncEnd.publish({ prefix: 'x' });
      await new Promise((resolve) => setTimeout(resolve, 20)); // a rethrown subscriber error would surface now
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      instrumentation.close();
    }
  });

  it('refuses bad options by name', () => {
    expect(() => instrumentRedscale({ keyGroups: [[/x/, '']] })).toThrow(InvalidOptionError);
    expect(() => instrumentRedscale({ maxKeyGroups: 0 })).toThrow(/maxKeyGroups/);
    expect(() => instrumentRedscale({ meterProvider: {} as never })).toThrow(/meterProvider/);
  });
});
