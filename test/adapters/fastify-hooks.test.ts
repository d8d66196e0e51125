import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { type RefusalContext, redscale } from '../../src/adapters/fastify/index.js';
import { inWords } from '../../src/adapters/fastify/refusal.js';
import { createClient, fixedWindow } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { FaultProxy } from '../harness/index.js';

/**
 * @fastify/rate-limit's hooks on redscale's own plugin: a custom refusal body
 * (`errorResponseBuilder`), `onExceeding` / `onExceeded`, and `skipOnError` mapped onto
 * `onRedisError`; plugin-wide and per route.
 */
const rejections = unhandledRejections();
const redis = connect('standalone');
const prefixes: string[] = [];
const apps: FastifyInstance[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  redis.disconnect();
  expect(rejections.list).toEqual([]);
});

async function appWith(options: Parameters<typeof redscale>[1] = {}) {
  const prefix = randomPrefix('fastify-hooks');
  prefixes.push(prefix);
  const app = Fastify();
  apps.push(app);
  await app.register(redscale, { redis, prefix, cache: false, ...options });
  return app;
}

const twoPerMinute = fixedWindow({ limit: 2, window: '1m', anchor: 'first-hit' });

describe('the plugin’s rate-limit hooks', () => {
  it('errorResponseBuilder shapes the refusal; a statusCode in its body sets the status', async () => {
    const contexts: RefusalContext[] = [];
    const app = await appWith({
      rateLimit: {
        errorResponseBuilder: (request, context) => {
          contexts.push(context);
          return { code: 'SLOW_DOWN', path: request.url, after: context.after, max: context.max };
        },
      },
    });
    app.get('/', { config: { redscale: { limits: twoPerMinute, key: () => 'k1' } } }, async () => 'ok');
    app.get(
      '/teapot',
      {
        config: {
          redscale: {
            limits: fixedWindow({ limit: 1, window: '1m' }),
            key: () => 'k2',
            // A route's own builder wins over the plugin's.
            errorResponseBuilder: () => ({ statusCode: 418, message: 'brew later' }),
          },
        },
      },
      async () => 'ok',
    );
    await app.inject('/');
    await app.inject('/');
    const refused = await app.inject('/');
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refused.json()).toEqual({
      code: 'SLOW_DOWN',
      path: '/',
      after: expect.stringMatching(/^\d+ (second|minute)s?$/),
      max: 2,
    });
    expect(contexts).toHaveLength(1);
    expect(contexts[0]).toMatchObject({ statusCode: 429, key: 'k1', max: 2, ttl: expect.any(Number) });
    expect(contexts[0]?.ttl).toBeGreaterThan(50_000);
    expect(contexts[0]?.result.reason).toBe('limit');

    expect((await app.inject('/teapot')).statusCode).toBe(200);
    const teapot = await app.inject('/teapot');
    expect(teapot.statusCode).toBe(418);
    expect(teapot.json()).toEqual({ statusCode: 418, message: 'brew later' });
  });

  it('onExceeding runs for every admitted request, onExceeded for every refused one, with the key', async () => {
    const seen: string[] = [];
    const app = await appWith({
      rateLimit: {
        onExceeding: (request: FastifyRequest, key) => seen.push(`exceeding ${key} ${request.url}`),
        onExceeded: (_request, key) => seen.push(`exceeded ${key}`),
      },
    });
    app.get('/', { config: { redscale: { limits: twoPerMinute, key: () => 7 } } }, async () => {
      seen.push('handler');
      return 'ok';
    });
    const codes: number[] = [];
    for (let i = 0; i < 4; i++) codes.push((await app.inject('/')).statusCode);
    expect(codes).toEqual([200, 200, 429, 429]);
    expect(seen).toEqual(['exceeding 7 /', 'handler', 'exceeding 7 /', 'handler', 'exceeded 7', 'exceeded 7']);
  });

  it('are validated at registration: not functions, or skipOnError beside onRedisError', async () => {
    await expect(appWith({ rateLimit: { onExceeded: 'log' as never } }).then((app) => app.ready())).rejects.toThrow(
      /invalid option "rateLimit.onExceeded" for the redscale Fastify plugin/,
    );
    await expect(
      appWith({ rateLimit: { skipOnError: true, onRedisError: 'deny' } }).then((app) => app.ready()),
    ).rejects.toThrow(/invalid option "rateLimit.skipOnError".*not both/);
    const app = await appWith();
    expect(() =>
      app.get('/', { config: { redscale: { limits: twoPerMinute, skipOnError: 'yes' as never } } }, async () => 'ok'),
    ).toThrow(/invalid option "skipOnError" for config.redscale of route GET \/:/);
  });

  it('says how long in words, as @fastify/rate-limit does', () => {
    expect([1, 2, 59, 60, 89, 90, 3_599, 3_600, 86_400, 200_000].map(inWords)).toEqual([
      '1 second',
      '2 seconds',
      '59 seconds',
      '1 minute',
      '1 minute',
      '2 minutes',
      '60 minutes',
      '1 hour',
      '1 day',
      '2 days',
    ]);
  });
});

describe('skipOnError, mapped onto onRedisError, while Redis does not answer', () => {
  async function silentRedisApp(rateLimit: Record<string, unknown>, route: Record<string, unknown> = {}) {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const client = createClient({ url: proxy.url, onError: quiet });
    const app = Fastify();
    await app.register(redscale, { redis: client, prefix: randomPrefix('fastify-skip'), cache: false, rateLimit });
    const handled: unknown[] = [];
    app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
      handled.push(error);
      return reply.code(error.statusCode ?? 500).send({ handledBy: 'app', message: error.message });
    });
    app.get('/', { config: { redscale: { limits: twoPerMinute, ...route } } }, async () => 'ok');
    expect((await app.inject('/')).statusCode).toBe(200);
    proxy.set({ kind: 'blackhole' });
    const close = async () => {
      await app.close();
      client.disconnect();
      await proxy.close();
    };
    return { app, handled, close };
  }

  it('true: requests pass while Redis is silent (onRedisError: allow)', async () => {
    const { app, handled, close } = await silentRedisApp({ skipOnError: true, timeout: 100 });
    try {
      const response = await app.inject('/');
      expect(response.statusCode).toBe(200);
      expect(response.body).toBe('ok');
      expect(handled).toEqual([]);
    } finally {
      await close();
    }
  });

  it('false: the Redis error reaches the app’s error handler with status 503, never a 500', async () => {
    const { app, handled, close } = await silentRedisApp({ skipOnError: false, timeout: 100 });
    try {
      const response = await app.inject('/');
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ handledBy: 'app', message: expect.stringMatching(/redscale/) });
      expect(handled).toHaveLength(1);
      expect(handled[0]).toMatchObject({ code: expect.stringMatching(/^ERR_/), statusCode: 503 });
    } finally {
      await close();
    }
  });

  it('on a route, replaces the plugin’s onRedisError for that route', async () => {
    const { app, handled, close } = await silentRedisApp({ onRedisError: 'deny', timeout: 100 }, { skipOnError: true });
    try {
      expect((await app.inject('/')).statusCode).toBe(200);
      expect(handled).toEqual([]);
    } finally {
      await close();
    }
  });

  it('unset: onRedisError answers as before (deny: the plugin replies 503 itself)', async () => {
    const { app, handled, close } = await silentRedisApp({ onRedisError: 'deny', timeout: 100 });
    try {
      const response = await app.inject('/');
      expect(response.statusCode).toBe(503);
      expect(response.json()).toMatchObject({ error: 'Service Unavailable' });
      expect(handled).toEqual([]);
    } finally {
      await close();
    }
  });
});
