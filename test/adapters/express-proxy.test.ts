import express5 from 'express';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROXY_WARNING_TYPE, rateLimit } from '../../src/adapters/express/index.js';
import { fixedWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/**
 * rateLimit() warns about a proxy setup that makes `req.ip` (its default key) wrong, as
 * express-rate-limit's validations do: once per app and code, as a process warning.
 */
type ExpressLike = typeof express5;
const EXPRESSES: Array<[string, ExpressLike]> = [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as ExpressLike],
];

// Warnings are emitted on the next tick: give them a moment to arrive.
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe.each(EXPRESSES)('%s: proxy warnings', (_name, express) => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const warnings: Array<{ code?: string; name: string; message: string }> = [];
  const listen = (warning: Error & { code?: string }) => {
    if (warning.name === PROXY_WARNING_TYPE)
      warnings.push({ code: warning.code, name: warning.name, message: warning.message });
  };
  beforeEach(() => {
    warnings.length = 0;
    process.on('warning', listen);
  });
  afterEach(() => {
    process.off('warning', listen);
  });
  afterAll(async () => {
    for (const made of prefixes) await deletePrefix(redis, made);
    redis.disconnect();
  });

  function appWith(trustProxy: unknown, options: Partial<Parameters<typeof rateLimit>[0]> = {}) {
    const prefix = randomPrefix('express-proxy');
    prefixes.push(prefix);
    const app = express();
    if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
    app.use(rateLimit({ redis, prefix, limits: fixedWindow({ limit: 100, window: '1m' }), ...options }));
    app.get('/', (req, res) => {
      res.json({ ip: req.ip });
    });
    return app;
  }
  const codes = () => warnings.map((warning) => warning.code);

  it('X-Forwarded-For while trust proxy is off: warns once per app, and every client is the proxy', async () => {
    const app = appWith(undefined);
    const first = await request(app).get('/').set('X-Forwarded-For', '203.0.113.7').expect(200);
    await request(app).get('/').set('X-Forwarded-For', '203.0.113.8').expect(200);
    await settle();
    expect(codes()).toEqual(['REDSCALE_UNEXPECTED_X_FORWARDED_FOR']);
    expect(warnings[0]?.message).toMatch(/^redscale rateLimit\(\): .*'trust proxy' is false.*share one limit/);
    // Why it matters: the key is the proxy's address, not the client's.
    expect(first.body.ip).not.toBe('203.0.113.7');

    // Another app warns for itself.
    await request(appWith(false)).get('/').set('X-Forwarded-For', '203.0.113.9').expect(200);
    await settle();
    expect(codes()).toEqual(['REDSCALE_UNEXPECTED_X_FORWARDED_FOR', 'REDSCALE_UNEXPECTED_X_FORWARDED_FOR']);
  });

  it('trust proxy true: warns that any client can pick its IP', async () => {
    const app = appWith(true);
    const spoofed = await request(app).get('/').set('X-Forwarded-For', '198.51.100.1').expect(200);
    expect(spoofed.body.ip).toBe('198.51.100.1');
    await request(app).get('/').expect(200);
    await settle();
    expect(codes()).toEqual(['REDSCALE_PERMISSIVE_TRUST_PROXY']);
  });

  it('the Forwarded header, which Express ignores, warns', async () => {
    await request(appWith(undefined)).get('/').set('Forwarded', 'for=192.0.2.60;proto=http').expect(200);
    await settle();
    expect(codes()).toEqual(['REDSCALE_FORWARDED_HEADER']);
  });

  it('stays quiet when the setup is right: trust proxy 1 behind one proxy, or no proxy at all', async () => {
    const behindOne = appWith(1);
    const answered = await request(behindOne).get('/').set('X-Forwarded-For', '203.0.113.7').expect(200);
    expect(answered.body.ip).toBe('203.0.113.7');
    await request(appWith(undefined)).get('/').expect(200);
    await settle();
    expect(warnings).toEqual([]);
  });

  it('checks only the default key, and can be turned off whole or one by one', async () => {
    const own = appWith(true, { keyGenerator: (req) => String(req.headers['x-user']) });
    await request(own).get('/').set('X-User', 'a').set('X-Forwarded-For', '203.0.113.7').expect(200);
    await request(appWith(true, { validate: false }))
      .get('/')
      .expect(200);
    const some = appWith(undefined, { validate: { xForwardedFor: false } });
    await request(some).get('/').set('X-Forwarded-For', '203.0.113.7').set('Forwarded', 'for=192.0.2.60').expect(200);
    await settle();
    expect(codes()).toEqual(['REDSCALE_FORWARDED_HEADER']);
    expect(() => appWith(undefined, { validate: { trustproxy: false } as never })).toThrow(
      /invalid option "validate" for rateLimit\(\).*trustProxy, xForwardedFor, forwarded, ip/,
    );
  });
});
