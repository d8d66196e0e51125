import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { redscale } from '../../src/adapters/fastify/index.js';
import { fixedWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

describe('the Fastify plugin with allow and deny lists', () => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const apps: FastifyInstance[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  async function appWith(options: Parameters<typeof redscale>[1] = {}) {
    const prefix = randomPrefix('fastify-lists');
    prefixes.push(prefix);
    const app = Fastify();
    apps.push(app);
    await app.register(redscale, { redis, prefix, ...options });
    return app;
  }
  const byHeader = (request: { headers: Record<string, unknown> }) => String(request.headers['x-user'] ?? 'anonymous');

  it('plugin-wide lists: keys, or a predicate over the request and its key', async () => {
    const seen: string[] = [];
    const app = await appWith({
      rateLimit: {
        allowList: async (request, key) => {
          seen.push(key);
          return request.headers['x-internal'] === 'yes';
        },
        denyList: ['banned'],
      },
    });
    app.get('/x', { config: { redscale: { limits: fixedWindow({ limit: 1, window: '1m' }), key: byHeader } } }, () => ({
      ok: true,
    }));
    for (let i = 0; i < 3; i++) {
      const internal = await app.inject({ url: '/x', headers: { 'x-user': 'svc', 'x-internal': 'yes' } });
      expect(internal.statusCode).toBe(200);
      expect(internal.headers.ratelimit).toBeUndefined();
      const banned = await app.inject({ url: '/x', headers: { 'x-user': 'banned', 'x-internal': 'yes' } });
      expect(banned.statusCode).toBe(403);
      expect(banned.json()).toMatchObject({ statusCode: 403, error: 'Forbidden' });
      expect(banned.headers['retry-after']).toBeUndefined();
    }
    // The deny list is checked first: the allow-list predicate never saw 'banned'.
    expect(seen).toEqual(['svc', 'svc', 'svc']);
    // Nothing was counted for the allow-listed key: off the list, it has its full limit.
    expect((await app.inject({ url: '/x', headers: { 'x-user': 'svc' } })).statusCode).toBe(200);
    expect((await app.inject({ url: '/x', headers: { 'x-user': 'svc' } })).statusCode).toBe(429);
  });

  it("a route's own lists replace the plugin's", async () => {
    const app = await appWith({ rateLimit: { allowList: ['vip'] } });
    const limits = fixedWindow({ limit: 1, window: '1m' });
    app.get('/open', { config: { redscale: { limits, key: byHeader } } }, () => ({ ok: true }));
    app.get('/strict', { config: { redscale: { limits, key: byHeader, allowList: [], denyList: ['vip'] } } }, () => ({
      ok: true,
    }));
    for (let i = 0; i < 3; i++) {
      expect((await app.inject({ url: '/open', headers: { 'x-user': 'vip' } })).statusCode).toBe(200);
    }
    expect((await app.inject({ url: '/strict', headers: { 'x-user': 'vip' } })).statusCode).toBe(403);
  });

  it('refuses a list that is neither keys nor a function at registration', async () => {
    const app = Fastify();
    apps.push(app);
    await expect(app.register(redscale, { redis, rateLimit: { allowList: 'vip' as never } })).rejects.toThrow(
      /"rateLimit\.allowList"/,
    );
  });
});
