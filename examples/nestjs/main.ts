/**
 * A NestJS app using redscale: RedscaleModule, the throttler storage with the seed's three named
 * throttlers, a Terminus readiness check, the injectable Cache, `/health/stats` (cache hit rate,
 * breaker states) and OpenTelemetry metrics for Prometheus at `/metrics`. It calls itself to show the
 * results, then exits; `SERVE=1` keeps it serving.
 *
 *   npm run example:nestjs
 */
import 'reflect-metadata';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Inject, Module, Param, Req, Res } from '@nestjs/common';
import { APP_GUARD, NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { SkipThrottle, ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Cache, primitivesReport } from 'redscale';
import { RedisHealthIndicator, RedscaleModule, RedscaleThrottlerStorage } from 'redscale/nestjs';
import { instrumentRedscale } from 'redscale/otel';
import { findOrStartRedis } from '../../test/harness/find-redis.js';

const found = await findOrStartRedis();

// Prometheus in one step: the exporter is the reader of the MeterProvider redscale records to.
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
const instrumentation = instrumentRedscale({ meterProvider, traces: false, keyGroups: [[/^product:/, 'product']] });

@Controller('metrics')
@SkipThrottle()
class MetricsController {
  @Get()
  metrics(@Req() request: IncomingMessage, @Res() response: ServerResponse) {
    exporter.getMetricsRequestHandler(request, response);
  }
}

// `@Inject(...)` on constructor parameters only because this example runs through esbuild (tsx),
// which emits no decorator metadata; in an app compiled by tsc, plain typed parameters work.
@Controller('products')
class ProductsController {
  constructor(@Inject(Cache) private readonly cache: Cache) {}

  @Get(':id')
  product(@Param('id') id: string) {
    return this.cache.getOrSet(`product:${id}`, async () => ({ id, name: `Product ${id}` }), {
      tags: [`product:${id}`],
    });
  }
}

@Controller('health')
@SkipThrottle()
class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(RedisHealthIndicator) private readonly redis: RedisHealthIndicator,
  ) {}

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.redis.isHealthy('redis')]);
  }
}

@Controller('health')
@SkipThrottle()
class StatsController {
  constructor(@Inject(Cache) private readonly cache: Cache) {}

  /** The cache's hit rate, its breaker state per Redis node and its counters; no I/O. */
  @Get('stats')
  stats() {
    return primitivesReport({ caches: { products: this.cache } });
  }
}

@Module({
  imports: [
    RedscaleModule.forRoot({ url: found.url, prefix: `example-nest-${process.pid}` }),
    ThrottlerModule.forRootAsync({
      inject: [RedscaleThrottlerStorage],
      useFactory: (storage: RedscaleThrottlerStorage) => ({
        throttlers: [
          { name: 'short', ttl: 1_000, limit: 3 },
          { name: 'medium', ttl: 60_000, limit: 60 },
          { name: 'long', ttl: 3_600_000, limit: 1_000 },
        ],
        storage,
      }),
    }),
    TerminusModule,
  ],
  controllers: [ProductsController, HealthController, StatsController, MetricsController],
  providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
})
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
const base = await app.getUrl();
console.log(`listening on ${base}`);

for (let i = 1; i <= 4; i++) {
  const response = await fetch(`${base}/products/7`);
  const remaining = response.headers.get('x-ratelimit-remaining-short');
  console.log(
    `GET /products/7 #${i}: ${response.status}  X-RateLimit-Remaining-short: ${remaining}  Retry-After-short: ${response.headers.get('retry-after-short')}`,
  );
}
const ready = await fetch(`${base}/health/ready`);
console.log(`GET /health/ready: ${ready.status} ${JSON.stringify(await ready.json())}`);
const stats = (await (await fetch(`${base}/health/stats`)).json()) as { caches: { products: { hitRate: number } } };
console.log(`GET /health/stats: cache hit rate ${stats.caches.products.hitRate.toFixed(2)}`);
const metrics = await (await fetch(`${base}/metrics`)).text();
console.log(`GET /metrics: ${metrics.split('\n').find((line) => line.startsWith('redscale_cache_hits_total'))}`);

if (!process.env.SERVE) {
  instrumentation.close();
  await meterProvider.shutdown();
  await app.close(); // quits the client RedscaleModule created from the url
  await found.stop();
}
