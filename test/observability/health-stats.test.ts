import express from 'express';
import Fastify from 'fastify';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { healthRoutes } from '../../src/adapters/express/index.js';
import { redscale } from '../../src/adapters/fastify/index.js';
import { Cache, fixedWindow, primitivesReport, RateLimiter } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

describe('health routes with the cache hit rate and breaker states', () => {
  it('Express: healthRoutes({ primitives }) serves /stats from the primitives it was given', async () => {
    const redis = connect();
    const prefix = randomPrefix('stats-express');
    const cache = new Cache({ redis, prefix, bus: false });
    const limiter = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 1, window: '1m' }) });
    const app = express();
    app.use(
      '/health',
      healthRoutes({ redis, prefix, primitives: { caches: { users: cache }, limiters: { api: limiter } } }),
    );
    try {
      await cache.getOrSet('u:1', () => 1);
      await cache.getOrSet('u:1', () => 1);
      await cache.get('u:2');
      await limiter.consume('a');
      await limiter.consume('a');
      const response = await request(app).get('/health/stats');
      expect(response.status).toBe(200);
      expect(response.body).toEqual(
        JSON.parse(JSON.stringify(primitivesReport({ caches: { users: cache }, limiters: { api: limiter } }))),
      );
      expect(response.body.caches.users).toMatchObject({ hitRate: 1 / 3, circuitBreakers: { standalone: 'closed' } });
      expect(response.body.caches.users.stats).toMatchObject({ l2Hits: 1, misses: 2 });
      expect(response.body.limiters.api).toMatchObject({
        circuitBreakers: { standalone: 'closed' },
        stats: { allowed: 1, limited: 1 },
      });
      // Without primitives there is no /stats route.
      const plain = express();
      plain.use('/health', healthRoutes({ redis }));
      expect((await request(plain).get('/health/stats')).status).toBe(404);
    } finally {
      await cache.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
    }
  });

  it('Fastify: the plugin serves /health/stats with its cache, its lock and every route limiter', async () => {
    const redis = connect();
    const prefix = randomPrefix('stats-fastify');
    const app = Fastify();
    await app.register(redscale, { redis, prefix, cache: { bus: false }, health: { routes: { prefix: '/health' } } });
    app.get('/items', { config: { redscale: { limits: fixedWindow({ limit: 1, window: '1m' }) } } }, async () => [1]);
    app.get('/user', async () => app.redscale.cache?.getOrSet('user:1', () => ({ id: 1 })));
    try {
      await app.ready();
      expect((await app.inject('/items')).statusCode).toBe(200);
      expect((await app.inject('/items')).statusCode).toBe(429);
      await app.inject('/user');
      await app.inject('/user');
      const response = await app.inject('/health/stats');
      expect(response.statusCode).toBe(200);
      const body = response.json();
      expect(body.caches.cache).toMatchObject({ hitRate: 0.5, circuitBreakers: { standalone: 'closed' } });
      expect(body.limiters['GET /items']).toMatchObject({ stats: { allowed: 1, limited: 1 } });
      expect(body.locks.lock.stats).toMatchObject({ acquired: 0 });
    } finally {
      await app.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
    }
  });
});
