import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { redscale, redscaleStore } from '../../src/adapters/fastify/index.js';
import { createClient, fixedWindow, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology, unhandledRejections } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';

const rejections = unhandledRejections();

describe('the redscale Fastify plugin', () => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const apps: FastifyInstance[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  async function appWith(options: Parameters<typeof redscale>[1] = {}) {
    const prefix = randomPrefix('fastify');
    prefixes.push(prefix);
    const app = Fastify();
    apps.push(app);
    await app.register(redscale, { redis, prefix, ...options });
    return app;
  }

  it('decorates the instance with the primitives', async () => {
    const app = await appWith();
    await app.ready();
    expect(app.redscale.redis).toBe(redis);
    expect(await app.redscale.cache?.getOrSet('k', () => 'loaded')).toBe('loaded');
    const handle = await app.redscale.lock.acquire('job');
    expect(handle.fence).toBeGreaterThan(0);
    await handle.release();
    expect((await app.redscale.health.check()).status).toBe('up');
  });

  it('limits routes that ask for it: 429, retry-after and headers; others are untouched', async () => {
    const app = await appWith();
    app.get('/limited', { config: { redscale: { limits: fixedWindow({ limit: 2, window: '1m' }) } } }, async () => ({
      ok: true,
    }));
    app.get('/free', async () => ({ ok: true }));
    const first = await app.inject('/limited');
    expect(first.statusCode).toBe(200);
    expect(first.headers.ratelimit).toMatch(/^limit=2, remaining=1, reset=\d+$/);
    expect((await app.inject('/limited')).statusCode).toBe(200);
    const refused = await app.inject('/limited');
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json()).toMatchObject({
      statusCode: 429,
      error: 'Too Many Requests',
      retryAfter: expect.any(Number),
    });
    for (let i = 0; i < 5; i++) expect((await app.inject('/free')).statusCode).toBe(200);
    expect((await app.inject('/free')).headers.ratelimit).toBeUndefined();
  });

  it('uses the route’s key and cost, and the chosen header mode', async () => {
    const app = await appWith({ rateLimit: { headers: 'legacy' } });
    app.post(
      '/upload',
      {
        config: {
          redscale: {
            limits: [slidingWindow({ limit: 5, window: '1m' })],
            key: (request) => String(request.headers['x-user']),
            cost: (request) => Number(request.headers['x-size'] ?? 1),
          },
        },
      },
      async () => ({ stored: true }),
    );
    const big = await app.inject({ method: 'POST', url: '/upload', headers: { 'x-user': 'a', 'x-size': '4' } });
    expect(big.statusCode).toBe(200);
    expect(big.headers['x-ratelimit-remaining']).toBe('1');
    expect(Number(big.headers['x-ratelimit-reset'])).toBeLessThanOrEqual(60);
    expect(
      (await app.inject({ method: 'POST', url: '/upload', headers: { 'x-user': 'a', 'x-size': '2' } })).statusCode,
    ).toBe(429);
    expect(
      (await app.inject({ method: 'POST', url: '/upload', headers: { 'x-user': 'b', 'x-size': '2' } })).statusCode,
    ).toBe(200);
  });

  it('serves health routes', async () => {
    const app = await appWith({ health: { routes: { prefix: '/health' } } });
    expect((await app.inject('/health/live')).json()).toMatchObject({ status: 'up' });
    const ready = await app.inject('/health/ready');
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'up', mode: 'standalone' });
  });

  it('closes a client it created, and never one it was given', async () => {
    const server = await RedisServer.start();
    try {
      const app = Fastify();
      await app.register(redscale, { url: { url: server.url, onError: quiet } });
      await app.ready();
      const created = app.redscale.redis;
      await created.ping();
      await app.close();
      expect(created.status).toBe('end');
      const mine = createClient({ url: server.url, onError: quiet });
      const other = Fastify();
      await other.register(redscale, { redis: mine });
      await other.close();
      await expect(mine.ping()).resolves.toBe('PONG');
      mine.disconnect();
    } finally {
      await server.dispose();
    }
  });

  it('refuses to start without Redis', async () => {
    const app = Fastify();
    await expect(app.register(redscale, {})).rejects.toThrow(/"redis" for the redscale Fastify plugin/);
  });
});

describe('@fastify/rate-limit with redscaleStore', () => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  async function appWith(options: Record<string, unknown>) {
    const prefix = randomPrefix('frl');
    prefixes.push(prefix);
    const app = Fastify();
    await app.register(fastifyRateLimit, { store: redscaleStore(redis, { prefix }), ...options });
    return app;
  }

  it('enforces max and timeWindow, then bans clients that keep going', async () => {
    const app = await appWith({ max: 2, timeWindow: 60_000, ban: 1 });
    app.get('/', async () => 'ok');
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await app.inject('/')).statusCode);
    // 2 allowed, the 3rd over the limit (429), and past max + ban the client is banned (403).
    expect(codes).toEqual([200, 200, 429, 403, 403]);
    const headers = (await app.inject('/')).headers;
    expect(Number(headers['retry-after'])).toBeGreaterThan(0);
    await app.close();
  });

  it('gives routes with their own limits their own counters (child)', async () => {
    const app = await appWith({ max: 100, timeWindow: 60_000 });
    app.get('/strict', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, async () => 'strict');
    app.get('/loose', async () => 'loose');
    expect((await app.inject('/strict')).statusCode).toBe(200);
    expect((await app.inject('/strict')).statusCode).toBe(429);
    expect((await app.inject('/loose')).statusCode).toBe(200);
    expect((await app.inject('/loose')).headers['x-ratelimit-remaining']).toBe('98');
    await app.close();
  });

  it('reads without counting ({ increment: false })', async () => {
    const app = await appWith({ global: false });
    await app.ready();
    const check = app.createRateLimit({ max: 3, timeWindow: 60_000 });
    const fakeRequest = { ip: '10.0.0.9', headers: {}, routeOptions: { url: '/' } } as never;
    await check(fakeRequest);
    await check(fakeRequest);
    const peek = await check(fakeRequest, { increment: false });
    const again = await check(fakeRequest, { increment: false });
    expect(peek).toMatchObject({ isAllowed: false, remaining: 1, isExceeded: false });
    expect(again).toMatchObject({ remaining: 1 });
    await app.close();
  });
});

describe.each<Topology>(['standalone', 'cluster'])('two Fastify instances sharing one Redis (%s)', (topology) => {
  it('enforce one shared limit', async () => {
    const prefix = randomPrefix('fastify-shared');
    const clients = [connect(topology), connect(topology)];
    const apps = await Promise.all(
      clients.map(async (client) => {
        const app = Fastify();
        await app.register(redscale, { redis: client, prefix, cache: false });
        app.get(
          '/',
          { config: { redscale: { limits: fixedWindow({ limit: 5, window: '1m' }), key: () => 'everyone' } } },
          async () => 'ok',
        );
        return app;
      }),
    );
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await apps[i % 2]!.inject('/')).statusCode);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    for (const app of apps) await app.close();
    await deletePrefix(clients[0]!, prefix);
    for (const client of clients) client.disconnect();
  });
});

describe('Fastify when Redis is killed', () => {
  it('answers per policy within the timeout, /ready turns 503, and closes cleanly', async () => {
    const server = await RedisServer.start();
    const redis = createClient({ url: server.url, onError: quiet });
    const app = Fastify();
    await app.register(redscale, {
      redis,
      rateLimit: { onRedisError: 'deny', timeout: 100 },
      health: { timeout: 200, routes: {} },
    });
    app.get('/', { config: { redscale: { limits: fixedWindow({ limit: 100, window: '1m' }) } } }, async () => 'ok');
    expect((await app.inject('/')).statusCode).toBe(200);
    await server.kill();
    const started = performance.now();
    const denied = await app.inject('/');
    expect(denied.statusCode).toBe(503);
    expect((await app.inject('/health/ready')).statusCode).toBe(503);
    expect(performance.now() - started).toBeLessThan(1_000);
    await app.close();
    redis.disconnect();
    await server.dispose();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rejections.list).toEqual([]);
  });
});
