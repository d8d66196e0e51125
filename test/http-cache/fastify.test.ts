import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type RouteHttpCache, redscale } from '../../src/adapters/fastify/index.js';
import { fixedWindow } from '../../src/index.js';
import { unhandledRejections } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';
import { type Instance, instances, sleep } from './support.js';

const rejections = unhandledRejections();

async function service(instance: Instance, defaults: Partial<RouteHttpCache> = {}) {
  const app = Fastify();
  const runs = { count: 0 };
  const errors: unknown[] = [];
  let version = 1;
  await app.register(redscale, { redis: instance.redis, prefix: 'unused', cache: false });
  const httpCache = (extra: Partial<RouteHttpCache> = {}): RouteHttpCache => ({
    cache: instance.cache,
    ttl: '1m',
    onError: (error) => errors.push(error),
    ...defaults,
    ...extra,
  });
  app.get('/items', { config: { httpCache: httpCache({ tags: () => ['items'] }) } }, async () => {
    runs.count++;
    await sleep(150);
    return { version, items: ['a', 'b'] };
  });
  app.post('/items', async (_request, reply) => {
    version++;
    await instance.cache.invalidateTags(['items']);
    return reply.code(204).send();
  });
  app.get('/text', { config: { httpCache: httpCache() } }, async (_request, reply) => {
    runs.count++;
    return reply.type('text/plain; charset=utf-8').send(Readable.from(['str', 'eam']));
  });
  app.get('/cookie', { config: { httpCache: httpCache() } }, async (_request, reply) => {
    runs.count++;
    return reply.header('set-cookie', `s=${runs.count}`).send({ n: runs.count });
  });
  app.get('/fails', { config: { httpCache: httpCache() } }, async (_request, reply) => {
    runs.count++;
    return reply.code(500).send({ n: runs.count });
  });
  app.get('/stale', { config: { httpCache: httpCache({ ttl: '300ms', staleFor: '1m' }) } }, async () => {
    runs.count++;
    return { n: runs.count };
  });
  app.get(
    '/limited',
    {
      config: {
        redscale: { limits: fixedWindow({ limit: 2, window: '1m' }) },
        httpCache: httpCache(),
      },
    },
    async () => {
      runs.count++;
      return { ok: true };
    },
  );
  await app.ready();
  return { app, runs, errors, bump: () => version++ };
}

describe('config.httpCache in the Fastify plugin', () => {
  const pool = instances('http-fastify');
  const servers: RedisServer[] = [];
  const apps: FastifyInstance[] = [];
  const make = async (instance: Instance, defaults?: Partial<RouteHttpCache>) => {
    const made = await service(instance, defaults);
    apps.push(made.app);
    return made;
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await pool.dispose();
    pool.renew();
    expect(rejections.list).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('runs the handler once for 100 concurrent cold requests spread over two instances', async () => {
    const a = await make(await pool.make({ timeout: '3s' }));
    const b = await make(await pool.make({ timeout: '3s' }));
    const responses = await Promise.all(
      Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).app.inject({ method: 'GET', url: '/items' })),
    );
    expect(a.runs.count + b.runs.count).toBe(1);
    expect(responses.map((response) => response.statusCode)).toEqual(Array(100).fill(200));
    expect(new Set(responses.map((response) => response.body))).toEqual(new Set(['{"version":1,"items":["a","b"]}']));
    expect(responses.every((response) => ['HIT', 'MISS'].includes(String(response.headers['x-cache'])))).toBe(true);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('answers a matching If-None-Match with 304, and HEAD from the GET entry', async () => {
    const { app, runs } = await make(await pool.make());
    const first = await app.inject({ method: 'GET', url: '/items' });
    expect(first.headers['x-cache']).toBe('MISS');
    const etag = String(first.headers.etag);
    const again = await app.inject({ method: 'GET', url: '/items', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers['x-cache']).toBe('HIT');
    const head = await app.inject({ method: 'HEAD', url: '/items' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.body).toBe('');
    expect(runs.count).toBe(1);
  });

  it('tag invalidation on one instance reaches the other', async () => {
    const a = await make(await pool.make());
    const b = await make(await pool.make());
    await a.app.inject({ method: 'GET', url: '/items' });
    expect((await b.app.inject({ method: 'GET', url: '/items' })).headers['x-cache']).toBe('HIT');
    a.bump();
    expect((await b.app.inject({ method: 'POST', url: '/items' })).statusCode).toBe(204);
    const after = await a.app.inject({ method: 'GET', url: '/items' });
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.json().version).toBe(2);
    expect(a.runs.count + b.runs.count).toBe(2);
  });

  it('stores a streamed body, never a Set-Cookie response or a 500', async () => {
    const { app, runs } = await make(await pool.make());
    for (let i = 0; i < 2; i++) {
      const text = await app.inject({ method: 'GET', url: '/text' });
      expect(text.body).toBe('stream');
      expect(text.headers['x-cache']).toBe(i === 0 ? 'MISS' : 'HIT');
    }
    expect(runs.count).toBe(1);
    for (const url of ['/cookie', '/fails']) {
      await app.inject({ method: 'GET', url });
      const second = await app.inject({ method: 'GET', url });
      expect(second.headers['x-cache']).toBe('MISS');
    }
    expect(runs.count).toBe(5);
    expect((await app.inject({ method: 'GET', url: '/cookie' })).headers['set-cookie']).toBe('s=6');
  });

  it('rate limits run before the cache: a hit still counts', async () => {
    const { app, runs } = await make(await pool.make());
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await app.inject({ method: 'GET', url: '/limited' })).statusCode);
    expect(codes).toEqual([200, 200, 429]);
    expect(runs.count).toBe(1);
  });

  it('serves STALE while an internal request refreshes the entry', async () => {
    const { app, runs } = await make(await pool.make());
    await app.inject({ method: 'GET', url: '/stale' });
    await sleep(400);
    const stale = await app.inject({ method: 'GET', url: '/stale' });
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(stale.json()).toEqual({ n: 1 });
    await waitUntil(
      'the refreshed entry',
      async () => (await app.inject({ method: 'GET', url: '/stale' })).json().n === 2,
    );
    expect(runs.count).toBe(2);
  });

  it('with Redis killed, every request gets the handler’s 200 within the timeout', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const { app, runs, errors } = await make(await pool.make({ url: server.url, timeout: '200ms' }));
    await server.kill();
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'GET', url: '/items' })));
    expect(responses.map((response) => response.statusCode)).toEqual(Array(20).fill(200));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(runs.count).toBeGreaterThanOrEqual(1);
    expect(errors).toEqual([]);
  });

  it('refuses a route without a cache at registration', async () => {
    const app = Fastify();
    apps.push(app);
    const { redis } = await pool.make();
    await app.register(redscale, { redis, cache: false });
    expect(() => app.get('/x', { config: { httpCache: { ttl: '1s' } } }, async () => 'x')).toThrow(
      /invalid option "config\.httpCache\.cache" for route GET \/x/,
    );
  });
});
