import 'reflect-metadata';
import { Controller, Get, Inject, Module } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { CacheHealthIndicator, RedscaleModule } from '../../src/adapters/nestjs/index.js';
import { Cache } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

@Controller('health')
class StatsController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(CacheHealthIndicator) private readonly cache: CacheHealthIndicator,
  ) {}

  @Get('stats')
  @HealthCheck()
  stats() {
    return this.health.check([() => this.cache.isHealthy('cache')]);
  }
}

describe('CacheHealthIndicator (NestJS + Terminus)', () => {
  it('reports the cache hit rate and breaker states through a Terminus health check', async () => {
    const redis = connect();
    const prefix = randomPrefix('nest-cache-stats');
    @Module({
      imports: [RedscaleModule.forRoot({ redis, prefix, cache: { bus: false } }), TerminusModule],
      controllers: [StatsController],
    })
    class AppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    try {
      const cache = app.get(Cache);
      await cache.getOrSet('p:1', () => 1);
      await cache.getOrSet('p:1', () => 1);
      await cache.getOrSet('p:1', () => 1);
      await cache.get('p:2');
      const response = await request(app.getHttpServer()).get('/health/stats').expect(200);
      expect(response.body.details.cache).toEqual({
        status: 'up',
        hitRate: 0.5,
        circuitBreakers: { standalone: 'closed' },
        busConnected: false,
        redisErrors: 0,
      });
    } finally {
      await app.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
    }
  });
});
