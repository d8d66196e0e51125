import type { Server } from 'node:http';
import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { healthRoutes, rateLimit } from '../../src/adapters/express/index.js';
import { createClient, fixedWindow, type RateLimitHeaderMode, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';
import { testClock } from '../ratelimit/support.js';

type ExpressLike = typeof express5;
const EXPRESSES: Array<[string, ExpressLike]> = [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as ExpressLike],
];

function appWith(express: ExpressLike, ...middleware: express5.RequestHandler[]) {
  const app = express();
  app.use(...middleware);
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/fails', (_req, res) => {
    res.status(500).json({ ok: false });
  });
  return app;
}

describe.each(EXPRESSES)('%s', (_name, express) => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const prefix = () => {
    const made = randomPrefix('express');
    prefixes.push(made);
    return made;
  };
  afterAll(async () => {
    for (const made of prefixes) await deletePrefix(redis, made);
    redis.disconnect();
  });

  it('answers the request after the limit with 429, Retry-After and a JSON body', async () => {
    const app = appWith(
      express,
      rateLimit({ redis, prefix: prefix(), limits: fixedWindow({ limit: 3, window: '1m' }) }),
    );
    for (let i = 0; i < 3; i++) await request(app).get('/').expect(200);
    const refused = await request(app).get('/').expect(429);
    expect(refused.body).toEqual({ error: 'Too Many Requests', retryAfter: expect.any(Number) });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });

  it.each<[RateLimitHeaderMode, Record<string, string>]>([
    [
      'draft-6',
      { 'ratelimit-policy': '2;w=10', 'ratelimit-limit': '2', 'ratelimit-remaining': '1', 'ratelimit-reset': '6' },
    ],
    ['draft-7', { 'ratelimit-policy': '2;w=10', ratelimit: 'limit=2, remaining=1, reset=6' }],
    ['draft-8', { 'ratelimit-policy': '"burst";q=2;w=10', ratelimit: '"burst";r=1;t=6' }],
  ])('sends exactly the %s headers', async (mode, expected) => {
    const clock = testClock();
    clock.advance(4_000);
    const app = appWith(
      express,
      rateLimit({
        redis,
        prefix: prefix(),
        limits: fixedWindow({ limit: 2, window: '10s', name: 'burst' }),
        clock: clock.now,
        headers: mode,
      }),
    );
    const first = await request(app).get('/').expect(200);
    for (const [name, value] of Object.entries(expected)) expect(first.headers[name]).toBe(value);
    expect(first.headers['retry-after']).toBeUndefined();
    await request(app).get('/').expect(200);
    const refused = await request(app).get('/').expect(429);
    expect(refused.headers['retry-after']).toBe('6');
  });

  it('sends the legacy X-RateLimit-* set, reset in epoch seconds, or no headers at all', async () => {
    const clock = testClock();
    const legacy = appWith(
      express,
      rateLimit({
        redis,
        prefix: prefix(),
        limits: fixedWindow({ limit: 2, window: '10s' }),
        clock: clock.now,
        headers: 'legacy',
      }),
    );
    const response = await request(legacy).get('/').expect(200);
    expect(response.headers['x-ratelimit-limit']).toBe('2');
    expect(response.headers['x-ratelimit-remaining']).toBe('1');
    expect(response.headers['x-ratelimit-reset']).toBe(String((clock.start + 10_000) / 1_000));
    const none = appWith(
      express,
      rateLimit({ redis, prefix: prefix(), limits: fixedWindow({ limit: 2, window: '10s' }), headers: false }),
    );
    const quietResponse = await request(none).get('/').expect(200);
    expect(Object.keys(quietResponse.headers).filter((name) => name.includes('ratelimit'))).toEqual([]);
  });

  it('charges a per-request cost, enforces several limits, and skips what it is told to', async () => {
    const app = appWith(
      express,
      rateLimit({
        redis,
        prefix: prefix(),
        limits: [slidingWindow({ limit: 10, window: '1m' }), fixedWindow({ limit: 4, window: '1h', name: 'hourly' })],
        cost: (req) => (req.path === '/fails' ? 3 : 1),
        skip: (req) => req.get('x-internal') === 'yes',
        headers: 'draft-8',
      }),
    );
    await request(app).get('/fails').expect(500);
    await request(app).get('/').expect(200);
    for (let i = 0; i < 5; i++) await request(app).get('/').set('x-internal', 'yes').expect(200);
    const refused = await request(app).get('/fails').expect(429);
    expect(refused.headers.ratelimit).toMatch(/"hourly";r=0/);
  });

  it('groups by the key generator (default: the client IP)', async () => {
    const app = appWith(
      express,
      rateLimit({
        redis,
        prefix: prefix(),
        limits: fixedWindow({ limit: 1, window: '1m' }),
        keyGenerator: (req) => String(req.get('x-user')),
      }),
    );
    await request(app).get('/').set('x-user', 'a').expect(200);
    await request(app).get('/').set('x-user', 'b').expect(200);
    await request(app).get('/').set('x-user', 'a').expect(429);
  });

  it('serves /live and /ready', async () => {
    const app = express();
    app.use('/health', healthRoutes({ redis }));
    expect((await request(app).get('/health/live').expect(200)).body.status).toBe('up');
    const ready = await request(app).get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'up', mode: 'standalone' });
  });
});

describe('two Express apps sharing one Redis', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
  const listen = (app: express5.Express) =>
    new Promise<Server>((resolve) => {
      const server = app.listen(0, () => resolve(server));
      servers.push(server);
    });

  it.each(['standalone', 'cluster'] as const)('enforce one shared limit (%s)', async (topology) => {
    const made = randomPrefix('express-shared');
    const clients = [connect(topology), connect(topology)];
    const [a, b] = await Promise.all(
      clients.map((client) =>
        listen(
          appWith(
            express5,
            rateLimit({
              redis: client,
              prefix: made,
              limits: fixedWindow({ limit: 5, window: '1m' }),
              keyGenerator: () => 'everyone',
            }),
          ),
        ),
      ),
    );
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await request(i % 2 ? a! : b!).get('/')).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    await deletePrefix(clients[0]!, made);
    for (const client of clients) client.disconnect();
  });
});

describe('Express when Redis is killed', () => {
  it('answers within the timeout per policy, and /ready turns 503', async () => {
    const server = await RedisServer.start();
    const redis = createClient({ url: server.url, onError: quiet });
    const limits = fixedWindow({ limit: 100, window: '1m' });
    const app = express5();
    app.use('/health', healthRoutes({ redis, timeout: 200 }));
    app.get('/open', rateLimit({ redis, prefix: 'k', limits, onRedisError: 'allow', timeout: 100 }), (_req, res) => {
      res.send('ok');
    });
    app.get('/closed', rateLimit({ redis, prefix: 'k', limits, onRedisError: 'deny', timeout: 100 }), (_req, res) => {
      res.send('ok');
    });
    await request(app).get('/health/ready').expect(200);
    await server.kill();
    const started = performance.now();
    await request(app).get('/open').expect(200);
    const closed = await request(app).get('/closed').expect(503);
    expect(closed.body.error).toBe('Service Unavailable');
    expect(performance.now() - started).toBeLessThan(1_000);
    const ready = await request(app).get('/health/ready').expect(503);
    expect(ready.body.status).toBe('down');
    redis.disconnect();
    await server.dispose();
  });
});
