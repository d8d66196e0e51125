import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { redscale } from '../../src/adapters/fastify/index.js';
import { fixedWindow, type LimitRule, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const TIERS: Record<string, LimitRule[]> = {
  free: [slidingWindow({ limit: 2, window: '1m' })],
  pro: [slidingWindow({ limit: 4, window: '1m' })],
  internal: [fixedWindow({ limit: 100, window: '1s' })],
};
const planOf = async (request: FastifyRequest) => TIERS[String(request.headers['x-plan'] ?? 'free')];

describe.each<Topology>(['standalone', 'cluster'])('Fastify routes with limits per request (%s)', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('fastify-tiers');
  const apps: FastifyInstance[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  async function instance() {
    const app = Fastify();
    apps.push(app);
    await app.register(redscale, { redis, prefix });
    app.get(
      '/search',
      {
        config: {
          redscale: {
            limits: TIERS.free as LimitRule[],
            key: (request) => String(request.headers['x-user']),
            limitsFor: planOf,
          },
        },
      },
      async () => ({ ok: true }),
    );
    return app;
  }

  it('two instances share each client’s count whatever its tier, and a tier change keeps it', async () => {
    const [one, two] = [await instance(), await instance()];
    const call = (app: FastifyInstance, user: string, plan?: string) =>
      app.inject({ url: '/search', headers: { 'x-user': user, ...(plan && { 'x-plan': plan }) } });
    expect((await call(one, 'ann')).statusCode).toBe(200);
    expect((await call(two, 'ann')).statusCode).toBe(200);
    expect((await call(one, 'ann')).statusCode).toBe(429);
    const upgraded = await call(two, 'ann', 'pro');
    expect(upgraded.statusCode).toBe(200);
    expect(upgraded.headers.ratelimit).toMatch(/^limit=4, remaining=1/);
    expect((await call(one, 'ann', 'pro')).statusCode).toBe(200);
    expect((await call(two, 'ann', 'pro')).statusCode).toBe(429);
    // A tier with another window counts on its own.
    for (let i = 0; i < 5; i++) expect((await call(i % 2 ? one : two, 'ann', 'internal')).statusCode).toBe(200);
  });
});
