/**
 * An Express app with redscale observed end to end: OpenTelemetry metrics served to Prometheus
 * at `GET /metrics`, and `GET /health/stats` with the cache hit rate and circuit breaker states.
 * `main.ts` runs it; the tests scrape it.
 *
 * Prometheus in one step — the OpenTelemetry Prometheus exporter as the reader of the
 * MeterProvider redscale records to, its request handler mounted on the app's own server:
 *
 *   const exporter = new PrometheusExporter({ preventServerStart: true })
 *   instrumentRedscale({ meterProvider: new MeterProvider({ readers: [exporter] }) })
 *   app.get('/metrics', (req, res) => exporter.getMetricsRequestHandler(req, res))
 */
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import express, { type Express } from 'express';
import { Cache, fixedWindow, RateLimiter, type RedisLike } from 'redscale';
import { healthRoutes, rateLimit } from 'redscale/express';
import { instrumentRedscale } from 'redscale/otel';

/** The app, and how to stop what it started (the Redis client stays the caller's). */
export interface ObservedApp {
  app: Express;
  cache: Cache;
  limiter: RateLimiter;
  close(): Promise<void>;
}

/** Builds the app on `redis`, with every key under `prefix`. */
export function createObservedApp(redis: RedisLike, prefix: string): ObservedApp {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  // Spans are off here: this app exports metrics only. keyGroups keeps labels few: never a user id.
  const instrumentation = instrumentRedscale({ meterProvider, traces: false, keyGroups: [[/^user:/, 'user']] });

  const cache = new Cache({ redis, prefix, ttl: '1m', l1: { maxEntries: 1_000 } });
  const limiter = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 3, window: '1m' }) });

  const app = express();
  app.get('/metrics', (req, res) => exporter.getMetricsRequestHandler(req, res));
  app.use(
    '/health',
    healthRoutes({ redis, prefix, primitives: { caches: { users: cache }, limiters: { api: limiter } } }),
  );
  app.use(rateLimit({ limiter }));
  app.get('/users/:id', async (req, res) => {
    const id = req.params.id;
    res.json(await cache.getOrSet(`user:${id}`, () => ({ id, name: `user ${id}` })));
  });

  return {
    app,
    cache,
    limiter,
    async close() {
      instrumentation.close();
      await cache.close();
      await meterProvider.shutdown();
    },
  };
}
