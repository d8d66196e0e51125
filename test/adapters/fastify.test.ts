import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { redscale, redscaleStore } from '../../src/adapters/fastify/index.js';
import { createClient, fixedWindow, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology, unhandledRejections } from '../harness/context.js';
import { FaultProxy, RedisServer } from '../harness/index.js';

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

  it('limits by a numeric key from the route’s key function', async () => {
    const app = await appWith();
    app.get(
      '/n',
      { config: { redscale: { limits: fixedWindow({ limit: 1, window: '1m' }), key: () => 42 } } },
      async () => 'ok',
    );
    expect((await app.inject('/n')).statusCode).toBe(200);
    expect((await app.inject('/n')).statusCode).toBe(429);
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

describe('redscaleStore and the plugin validate their options like every redscale constructor', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it('redscaleStore() refuses a missing client, unknown options and a prefix with braces', () => {
    expect(() => redscaleStore(undefined as never)).toThrow(/invalid option "redis" for redscaleStore\(\)/);
    expect(() => redscaleStore(redis, { prefx: 'a' } as never)).toThrow(/invalid option "prefx" for redscaleStore\(\)/);
    expect(() => redscaleStore(redis, { prefix: '{x}' })).toThrow(/invalid option "prefix"/);
    expect(() => redscaleStore(redis, { onRedisError: 'deny' } as never)).toThrow(/invalid option "onRedisError"/);
  });

  it.each([
    ['continueExceeding', { continueExceeding: true }, { anchor: 'clock' as const }],
    ['exponentialBackoff', { exponentialBackoff: true }, { anchor: 'clock' as const }],
    ['timeWindow', { timeWindow: 0 }, {}],
    ['timeWindow', { timeWindow: '285421 years' }, {}],
  ])(
    'refuses %s where it cannot count it, at registration, globally or on a route',
    async (option, settings, store) => {
      const global = Fastify();
      await expect(
        global.register(fastifyRateLimit, { store: redscaleStore(redis, store), ...settings }).ready(),
      ).rejects.toThrow(new RegExp(`invalid option "${option}" for @fastify/rate-limit with redscaleStore\\(\\)`));
      await global.close();
      const route = Fastify();
      await route.register(fastifyRateLimit, { store: redscaleStore(redis, store) });
      // Routes are registered through the plugin's onRoute hook: the route's registration throws.
      expect(() => route.get('/', { config: { rateLimit: { max: 2, ...settings } } }, async () => 'ok')).toThrow(
        new RegExp(`invalid option "${option}"`),
      );
      await route.close();
    },
  );

  it('the plugin refuses unknown or misplaced options, unknown header modes and bad route limits', async () => {
    const register = async (options: Record<string, unknown>) => {
      const app = Fastify();
      try {
        await app.register(redscale, { redis, ...options } as never).ready();
      } finally {
        await app.close();
      }
    };
    await expect(register({ onRedisError: 'deny' })).rejects.toThrow(
      /invalid option "onRedisError" for the redscale Fastify plugin: .*expected one of the known options: redis, url, prefix, rateLimit/,
    );
    await expect(register({ rateLimit: { headers: 'draft-9' } })).rejects.toThrow(/invalid option "rateLimit.headers"/);
    await expect(register({ rateLimit: { onRedisError: 'drop' } })).rejects.toThrow(
      /invalid option "rateLimit.onRedisError"/,
    );
    await expect(register({ prefix: '{x}' })).rejects.toThrow(/invalid option "prefix"/);
    await expect(register({ redis: undefined })).rejects.toThrow(/invalid option "redis"/);
    const app = Fastify();
    await app.register(redscale, { redis, cache: false });
    expect(() =>
      app.get(
        '/',
        { config: { redscale: { limits: fixedWindow({ limit: 1, window: '1m' }), cost: 0 } } },
        async () => 'x',
      ),
    ).toThrow(/invalid option "cost" for config.redscale of route GET \//);
    expect(() =>
      app.get(
        '/k',
        { config: { redscale: { limit: fixedWindow({ limit: 1, window: '1m' }) } as never } },
        async () => 'x',
      ),
    ).toThrow(/invalid option "limit"/);
    await app.close();
  });
});

describe.each<Topology>(['standalone', 'cluster'])('@fastify/rate-limit with redscaleStore on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('frl-keys');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('counts numeric keys, routes with braces in their URL, and reports a clean state to read()', async () => {
    const app = Fastify();
    await app.register(fastifyRateLimit, {
      store: redscaleStore(redis, { prefix }),
      max: 2,
      timeWindow: 30_000,
      keyGenerator: (request) => Number(request.headers['x-account'] ?? 7),
    });
    app.get('/users/:id', async () => 'ok');
    app.get('/odd/{x}', { config: { rateLimit: { max: 1, timeWindow: 30_000 } } }, async () => 'odd');
    const first = await app.inject('/users/1');
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-ratelimit-reset']).toBe('30');
    expect((await app.inject('/users/2')).statusCode).toBe(200);
    expect((await app.inject('/users/3')).statusCode).toBe(429);
    expect((await app.inject({ url: '/users/3', headers: { 'x-account': '8' } })).statusCode).toBe(200);
    expect((await app.inject('/odd/{x}')).statusCode).toBe(200);
    expect((await app.inject('/odd/{x}')).statusCode).toBe(429);
    const check = app.createRateLimit({ max: 3, timeWindow: 30_000 });
    const unseen = await check({ ip: '10.9.9.9', headers: {}, routeOptions: { url: '/' } } as never, {
      increment: false,
    });
    expect(unseen).toMatchObject({ remaining: 3, ttl: 0, isExceeded: false });
    await app.close();
  });
});

describe('@fastify/rate-limit with redscaleStore when Redis stops answering', () => {
  const prefix = randomPrefix('frl-outage');
  afterAll(async () => {
    const cleaner = connect('standalone');
    await deletePrefix(cleaner, prefix);
    cleaner.disconnect();
  });

  it.each([
    [false, 500],
    [true, 200],
  ])('passes the error to the plugin, whose skipOnError (%s) decides', async (skipOnError, status) => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const redis = createClient({ url: proxy.url, onError: quiet });
    await redis.ping();
    const errors: string[] = [];
    const app = Fastify();
    await app.register(fastifyRateLimit, {
      store: redscaleStore(redis, { prefix, timeout: 100, onError: (error) => errors.push(error.code) }),
      max: 5,
      timeWindow: 60_000,
      skipOnError,
    });
    app.get('/', async () => 'ok');
    expect((await app.inject('/')).statusCode).toBe(200);
    proxy.set({ kind: 'blackhole' });
    const response = await app.inject('/');
    expect(response.statusCode).toBe(status);
    if (!skipOnError)
      expect(response.json()).toMatchObject({ message: expect.stringMatching(/did not answer within 100 ms/) });
    expect(errors).toEqual(['ERR_TIMEOUT']);
    await app.close();
    redis.disconnect();
    await proxy.close();
  });

  it("counts in memory under onRedisError: 'memory'", async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const redis = createClient({ url: proxy.url, onError: quiet });
    await redis.ping();
    const app = Fastify();
    await app.register(fastifyRateLimit, {
      store: redscaleStore(redis, { prefix, timeout: 100, onRedisError: 'memory' }),
      max: 1,
      timeWindow: 60_000,
    });
    app.get('/', async () => 'ok');
    proxy.set({ kind: 'blackhole' });
    expect((await app.inject('/')).statusCode).toBe(200);
    expect((await app.inject('/')).statusCode).toBe(429);
    await app.close();
    redis.disconnect();
    await proxy.close();
  });
});
