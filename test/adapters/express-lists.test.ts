import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { rateLimit } from '../../src/adapters/express/index.js';
import { fixedWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

describe('Express rateLimit with allow and deny lists', () => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const prefix = () => {
    const made = randomPrefix('express-lists');
    prefixes.push(made);
    return made;
  };
  afterAll(async () => {
    for (const made of prefixes) await deletePrefix(redis, made);
    redis.disconnect();
  });

  function appWith(middleware: express.RequestHandler) {
    const app = express();
    app.use(middleware);
    app.get('/', (_req, res) => {
      res.json({ ok: true });
    });
    return app;
  }
  const byHeader = (req: express.Request) => String(req.headers['x-user'] ?? 'anonymous');

  it('passes allow-listed keys without headers or counts, refuses deny-listed ones with 403, limits the rest', async () => {
    const app = appWith(
      rateLimit({
        redis,
        prefix: prefix(),
        limits: fixedWindow({ limit: 2, window: '1m' }),
        keyGenerator: byHeader,
        allowList: ['partner'],
        denyList: async (id) => id.startsWith('banned:'),
      }),
    );
    for (let i = 0; i < 4; i++) {
      const passed = await request(app).get('/').set('x-user', 'partner').expect(200);
      expect(passed.headers.ratelimit).toBeUndefined();
      const refused = await request(app).get('/').set('x-user', 'banned:7').expect(403);
      expect(refused.body).toEqual({ error: 'Forbidden' });
      expect(refused.headers['retry-after']).toBeUndefined();
      expect(refused.headers.ratelimit).toBeUndefined();
    }
    await request(app).get('/').set('x-user', 'ann').expect(200);
    const counted = await request(app).get('/').set('x-user', 'ann').expect(200);
    expect(counted.headers.ratelimit).toMatch(/^limit=2, remaining=0/);
    await request(app).get('/').set('x-user', 'ann').expect(429);
  });

  it("a custom handler sees a deny-listed request's reason", async () => {
    const app = appWith(
      rateLimit({
        redis,
        prefix: prefix(),
        limits: fixedWindow({ limit: 1, window: '1m' }),
        keyGenerator: byHeader,
        denyList: ['banned'],
        handler: (_req, res, _next, result) => {
          res.status(result.reason === 'deny-list' ? 451 : 429).json({ reason: result.reason });
        },
      }),
    );
    expect((await request(app).get('/').set('x-user', 'banned').expect(451)).body).toEqual({ reason: 'deny-list' });
  });
});
