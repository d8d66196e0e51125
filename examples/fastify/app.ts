/**
 * A Fastify API using redscale: the plugin (cache, lock, health routes with `/health/stats`,
 * route-level limits), @fastify/rate-limit running on redscaleStore, and OpenTelemetry metrics
 * for Prometheus at `/metrics`. It calls itself to show the results, then
 * exits; `SERVE=1` keeps it serving.
 *
 *   npm run example:fastify
 */
import fastifyRateLimit from '@fastify/rate-limit';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import Fastify from 'fastify';
import { createClient, slidingWindow } from 'redscale';
import { redscale, redscaleStore } from 'redscale/fastify';
import { instrumentRedscale } from 'redscale/otel';
import { findOrStartRedis } from '../../test/harness/find-redis.js';

const found = await findOrStartRedis();
const redis = createClient(found.url);
const prefix = `example-fastify-${process.pid}`;

// Prometheus in one step: the exporter is the reader of the MeterProvider redscale records to.
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
const instrumentation = instrumentRedscale({ meterProvider, traces: false, keyGroups: [[/^product:/, 'product']] });

const app = Fastify();
app.get('/metrics', { config: { rateLimit: false } }, (request, reply) => {
  reply.hijack(); // the exporter writes the response itself
  exporter.getMetricsRequestHandler(request.raw, reply.raw);
});
await app.register(redscale, { redis, prefix, health: { routes: { prefix: '/health' } } });
// Routes without their own limits share @fastify/rate-limit's, counted in Redis by redscale.
await app.register(fastifyRateLimit, {
  max: 100,
  timeWindow: 60_000,
  store: redscaleStore(redis, { prefix: `${prefix}:frl` }),
});

let lookups = 0;
app.get('/products/:id', async (request) => {
  const { id } = request.params as { id: string };
  return app.redscale.cache?.getOrSet(`product:${id}`, async () => {
    lookups++;
    return { id, name: `Product ${id}` };
  });
});
app.get(
  '/search',
  { config: { redscale: { limits: slidingWindow({ limit: 3, window: '10s' }) }, rateLimit: false } },
  async () => ({ results: [] }),
);

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
console.log(`listening on ${base}`);

for (let i = 1; i <= 3; i++) await fetch(`${base}/products/7`);
console.log(`GET /products/7 three times: ${lookups} lookup (the rest from the cache)`);
for (let i = 1; i <= 4; i++) {
  const response = await fetch(`${base}/search`);
  console.log(`GET /search #${i}: ${response.status}  RateLimit: ${response.headers.get('ratelimit')}`);
}
const products = await fetch(`${base}/products/8`);
console.log(
  `GET /products/8: ${products.status}  x-ratelimit-remaining (from @fastify/rate-limit): ${products.headers.get('x-ratelimit-remaining')}`,
);
const ready = await fetch(`${base}/health/ready`);
console.log(`GET /health/ready: ${ready.status}`);
const stats = (await (await fetch(`${base}/health/stats`)).json()) as { caches: { cache: { hitRate: number } } };
console.log(`GET /health/stats: cache hit rate ${stats.caches.cache.hitRate.toFixed(2)}`);
const metrics = await (await fetch(`${base}/metrics`)).text();
console.log(`GET /metrics: ${metrics.split('\n').find((line) => line.startsWith('redscale_cache_hits_total'))}`);

if (!process.env.SERVE) {
  instrumentation.close();
  await meterProvider.shutdown();
  await app.close();
  redis.disconnect();
  await found.stop();
}
