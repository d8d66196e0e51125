import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/adapters/express/index.js';
import { fixedWindow, gcra, InvalidOptionError } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

const TIERS = {
  free: [fixedWindow({ limit: 2, window: '1m' })],
  pro: [fixedWindow({ limit: 5, window: '1m' }), gcra({ limit: 10, window: '1s', burst: 5 })],
};

describe('Express rateLimit with limits per request (tiers)', () => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const made of prefixes) await deletePrefix(redis, made);
    redis.disconnect();
  });

  function appOn(prefix: string) {
    const app = express();
    app.use(
      rateLimit({
        redis,
        prefix,
        limits: TIERS.free,
        keyGenerator: (req) => String(req.headers['x-user']),
        limitsFor: (req) => (req.headers['x-plan'] === 'pro' ? TIERS.pro : undefined),
      }),
    );
    app.get('/', (_req, res) => {
      res.json({ ok: true });
    });
    return app;
  }

  it('limits each request by its tier, and two apps on one Redis share the counts', async () => {
    const prefix = randomPrefix('express-tiers');
    prefixes.push(prefix);
    const [one, two] = [appOn(prefix), appOn(prefix)];
    await request(one).get('/').set('x-user', 'ann').expect(200);
    await request(two).get('/').set('x-user', 'ann').expect(200);
    const refused = await request(one).get('/').set('x-user', 'ann').expect(429);
    expect(refused.headers.ratelimit).toMatch(/^limit=2, remaining=0/);
    // Upgraded: the two requests already made this minute still count, against 5.
    const pro = await request(two).get('/').set('x-user', 'ann').set('x-plan', 'pro').expect(200);
    expect(pro.headers['ratelimit-policy']).toBe('5;w=60, 5;w=1');
    expect(pro.headers.ratelimit).toMatch(/^limit=5, remaining=2/);
    await request(one).get('/').set('x-user', 'ann').set('x-plan', 'pro').expect(200);
    await request(two).get('/').set('x-user', 'ann').set('x-plan', 'pro').expect(200);
    await request(one).get('/').set('x-user', 'ann').set('x-plan', 'pro').expect(429);
  });

  it('refuses a limitsFor that is not a function, and a tier with bad limits as a 500, never a silent pass', async () => {
    expect(() => rateLimit({ redis, limits: TIERS.free, limitsFor: TIERS.pro as never })).toThrow(InvalidOptionError);
    const prefix = randomPrefix('express-tiers');
    prefixes.push(prefix);
    const app = express();
    app.use(rateLimit({ redis, prefix, limits: TIERS.free, limitsFor: () => [] as never }));
    app.get('/', (_req, res) => {
      res.json({ ok: true });
    });
    await request(app).get('/').expect(500);
  });
});
