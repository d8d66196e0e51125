import {
  AggregationTemporality,
  type DataPoint,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import { createClient, fixedWindow, RateLimiter } from '../../src/index.js';
import { instrumentRedscale } from '../../src/otel/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisCluster } from '../harness/index.js';

const rejections = unhandledRejections();

describe('redscale/otel on a Redis Cluster', () => {
  const closing: Array<() => Promise<unknown> | unknown> = [];
  afterAll(async () => {
    for (const close of closing.reverse()) await close();
  });

  it('reports Redis errors and the open breaker of the dead master only, by node address', async () => {
    const cluster = await RedisCluster.start({ args: ['--cluster-require-full-coverage', 'no'] });
    closing.push(() => cluster.stop());
    const redis = createClient({ nodes: cluster.nodes, onError: quiet }) as Cluster;
    closing.push(() => redis.disconnect());
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const instrumentation = instrumentRedscale({
      meterProvider: new MeterProvider({ readers: [reader] }),
      traces: false,
    });
    closing.push(() => instrumentation.close());
    const prefix = randomPrefix('otel-cluster');
    const limiter = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 1_000_000, window: '1h' }),
      timeout: 200,
      circuitBreaker: { failureThreshold: 1, failureWindow: 0, cooldown: '1m' },
    });
    await redis.ping();
    const ids = Array.from({ length: 60 }, (_, i) => `user-${i}`);
    for (const id of ids) expect((await limiter.consume(id)).source).toBe('redis');
    const victim = cluster.servers[0];
    const victimAddress = `127.0.0.1:${victim?.port}`;
    const onVictim = ids.filter((id) => nodeOf(redis, `${prefix}:rl:{${id}}`) === victimAddress);
    expect(onVictim.length).toBeGreaterThan(5);

    await victim?.kill();
    for (const id of ids) await limiter.consume(id);

    exporter.reset();
    await reader.forceFlush();
    const points = new Map<string, DataPoint<number>[]>();
    for (const scope of exporter.getMetrics().flatMap((resource) => resource.scopeMetrics)) {
      for (const metric of scope.metrics) points.set(metric.descriptor.name, metric.dataPoints as DataPoint<number>[]);
    }
    const open = (points.get('redscale.circuit_breaker.open') ?? []).filter(
      (point) => point.attributes['redscale.prefix'] === prefix,
    );
    expect(open.map((point) => [point.attributes['redscale.redis.node'], point.value])).toEqual([[victimAddress, 1]]);
    const errors = (points.get('redscale.redis.errors') ?? []).filter(
      (point) => point.attributes['redscale.prefix'] === prefix,
    );
    // One failure opened the victim's breaker; its other keys skipped Redis; no other node failed.
    expect(errors.map((point) => [point.attributes['redscale.redis.node'], point.value])).toEqual([[victimAddress, 1]]);
    expect(limiter.stats()).toMatchObject({ redisErrors: 1, breakerOpens: 1, breakerSkips: onVictim.length - 1 });
    expect(limiter.circuitBreakers()[victimAddress]).toBe('open');
    expect(Object.values(limiter.circuitBreakers()).filter((state) => state === 'open')).toHaveLength(1);
    expect(rejections.list).toEqual([]);
  }, 60_000);
});
