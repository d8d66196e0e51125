import express5 from 'express';
import { rateLimit as erl8 } from 'express-rate-limit';
import { rateLimit as erl7 } from 'express-rate-limit7';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { RedscaleStore, type RedscaleStoreOptions } from '../../src/adapters/express/index.js';
import { createClient, InvalidOptionError, type RedisLike, type RedscaleError } from '../../src/index.js';
import {
  connect,
  countKeys,
  deletePrefix,
  quiet,
  randomPrefix,
  type Topology,
  unhandledRejections,
} from '../harness/context.js';
import { FaultProxy } from '../harness/index.js';

type ExpressLike = typeof express5;
type RateLimitFn = typeof erl8;
const EXPRESSES: Array<[string, ExpressLike]> = [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as ExpressLike],
];
const LIMITERS: Array<[string, RateLimitFn]> = [
  ['express-rate-limit 8', erl8],
  ['express-rate-limit 7', erl7 as unknown as RateLimitFn],
];

const rejections = unhandledRejections();

function appWith(express: ExpressLike, limiter: express5.RequestHandler) {
  const app = express();
  app.use(limiter);
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/fails', (_req, res) => {
    res.status(500).json({ ok: false });
  });
  return app;
}

/** Console output of express-rate-limit (it logs store errors and its own validation warnings). */
function consoleLog() {
  const lines: string[] = [];
  beforeEach(() => {
    lines.length = 0;
    for (const method of ['warn', 'error'] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        lines.push(args.map((arg) => (arg instanceof Error ? `${arg.name}: ${arg.message}` : String(arg))).join(' '));
      });
    }
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return lines;
}

describe.each(LIMITERS)('%s with RedscaleStore', (_name, rateLimit) => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const store = (options: Partial<RedscaleStoreOptions> = {}) => {
    const prefix = randomPrefix('erl');
    prefixes.push(prefix);
    return new RedscaleStore({ redis, prefix, ...options });
  };
  const log = consoleLog();
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  describe.each(EXPRESSES)('on %s', (_express, express) => {
    it('counts in a window that starts at the first hit: reset is the whole window, then Retry-After', async () => {
      const limiter = rateLimit({ windowMs: 60_000, limit: 2, store: store(), standardHeaders: 'draft-7' });
      const app = appWith(express, limiter as unknown as express5.RequestHandler);
      const first = await request(app).get('/').expect(200);
      expect(first.headers.ratelimit).toBe('limit=2, remaining=1, reset=60');
      expect(first.headers['ratelimit-policy']).toBe('2;w=60');
      await request(app).get('/').expect(200);
      const refused = await request(app).get('/').expect(429);
      expect(refused.headers['retry-after']).toBe('60');
      expect(log).toEqual([]);
    });

    it('gives back failed requests with skipFailedRequests (decrement), and resets a key', async () => {
      const limiter = rateLimit({ windowMs: 60_000, limit: 2, store: store(), skipFailedRequests: true });
      const app = appWith(express, limiter as unknown as express5.RequestHandler);
      for (let i = 0; i < 5; i++) await request(app).get('/fails').expect(500);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(200);
      await request(app).get('/').expect(429);
      await limiter.resetKey('::ffff:127.0.0.1');
      await limiter.resetKey('127.0.0.1');
      await request(app).get('/').expect(200);
      expect(log).toEqual([]);
    });
  });

  it('get() reports what was counted: nothing for an unseen key, after a give-back, after a reset', async () => {
    const counted = store();
    rateLimit({ windowMs: 30_000, limit: 5, store: counted });
    expect(await counted.get('unseen')).toBeUndefined();
    const before = Date.now();
    expect((await counted.increment('k')).totalHits).toBe(1);
    const info = await counted.get('k');
    expect(info?.totalHits).toBe(1);
    expect(info?.resetTime?.getTime()).toBeGreaterThanOrEqual(before + 29_000);
    expect(info?.resetTime?.getTime()).toBeLessThanOrEqual(Date.now() + 30_000);
    await counted.decrement('k');
    expect(await counted.get('k')).toBeUndefined();
    await counted.increment('k');
    await counted.increment('k');
    expect((await counted.get('k'))?.totalHits).toBe(2);
    await counted.resetKey('k');
    expect(await counted.get('k')).toBeUndefined();
  });

  it('resetAll() forgets every client of its own limiter, and only those', async () => {
    const mine = store({ prefix: randomPrefix('erl-a[1]*') });
    const other = store();
    rateLimit({ windowMs: 60_000, limit: 5, store: mine });
    rateLimit({ windowMs: 60_000, limit: 5, store: other });
    for (const key of ['a', 'b', 'c']) {
      await mine.increment(key);
      await other.increment(key);
    }
    await mine.resetAll();
    expect(await mine.get('a')).toBeUndefined();
    expect(await mine.get('c')).toBeUndefined();
    expect((await other.get('a'))?.totalHits).toBe(1);
    expect(await countKeys(redis, other.prefix)).toBe(3);
  });

  it('refuses windowMs 0 at creation, and every request names that error, not another', async () => {
    const create = () => rateLimit({ windowMs: 0, limit: 5, store: store() });
    // express-rate-limit 7 lets a store's init error throw; 8 logs it and goes on.
    if (rateLimit !== erl8) {
      expect(create).toThrow(/invalid option "windowMs" for RedscaleStore.*received 0/);
      return;
    }
    const limiter = create();
    expect(log.join('\n')).toMatch(/invalid option "windowMs" for RedscaleStore.*received 0/);
    const app = appWith(express5, limiter as unknown as express5.RequestHandler);
    app.use((error: Error, _req: express5.Request, res: express5.Response, _next: express5.NextFunction) => {
      res.status(500).json({ error: error.message, kind: error instanceof InvalidOptionError });
    });
    const response = await request(app).get('/').expect(500);
    expect(response.body).toEqual({ error: expect.stringMatching(/invalid option "windowMs"/), kind: true });
  });

  it('refuses invalid options when constructed', () => {
    expect(() => new RedscaleStore({ redis, window: 5 } as never)).toThrow(/invalid option "window" for RedscaleStore/);
    expect(() => new RedscaleStore({ redis, prefix: '{x}' })).toThrow(/invalid option "prefix"/);
    expect(() => new RedscaleStore({ redis, onRedisError: 'ignore' } as never)).toThrow(
      /invalid option "onRedisError"/,
    );
    expect(() => new RedscaleStore({} as never)).toThrow(/invalid option "redis"/);
  });
});

describe.each(LIMITERS)('%s with RedscaleStore when Redis stops answering', (_name, rateLimit) => {
  const log = consoleLog();
  let proxy: FaultProxy;
  let redis: RedisLike;
  const prefix = randomPrefix('erl-outage');
  beforeEach(async () => {
    proxy = await FaultProxy.start(inject('redisUrl'));
    redis = createClient({ url: proxy.url, onError: quiet, commandTimeout: 2_000 });
    await redis.ping();
  });
  afterEach(async () => {
    redis.disconnect();
    await proxy.close();
  });
  afterAll(async () => {
    const cleaner = connect('standalone');
    await deletePrefix(cleaner, prefix);
    cleaner.disconnect();
  });

  it('never rejects from decrement (skipFailedRequests): the failure goes to onError, nothing crashes', async () => {
    const errors: RedscaleError[] = [];
    const store = new RedscaleStore({ redis, prefix, timeout: 100, onError: (error) => errors.push(error) });
    const limiter = rateLimit({ windowMs: 60_000, limit: 5, store, skipFailedRequests: true });
    const app = express5();
    app.use(limiter as unknown as express5.RequestHandler);
    // Counted while Redis answers; Redis stops before the failed response is given back.
    app.get('/fails', (_req, res) => {
      proxy.set({ kind: 'blackhole' });
      res.status(500).end();
    });
    await request(app).get('/fails').expect(500);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(errors.map((error) => error.code)).toEqual(['ERR_TIMEOUT']);
    expect(rejections.list).toEqual([]);
    expect(log.filter((line) => /decrement/.test(line))).toEqual([]);
  });

  it.each([
    [false, 500],
    [true, 200],
  ])('passes the Redis error to express-rate-limit, whose passOnStoreError (%s) decides', async (pass, status) => {
    const store = new RedscaleStore({ redis, prefix, timeout: 100 });
    const limiter = rateLimit({ windowMs: 60_000, limit: 5, store, passOnStoreError: pass });
    const app = express5();
    app.use(limiter as unknown as express5.RequestHandler);
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    proxy.set({ kind: 'blackhole' });
    await request(app).get('/').expect(status);
    expect(log.join('\n')).toMatch(pass ? /did not answer within 100 ms/ : /^$/);
  });

  it("counts in memory under onRedisError: 'memory', and get/resetKey/resetAll never reject", async () => {
    const errors: RedscaleError[] = [];
    const store = new RedscaleStore({
      redis,
      prefix,
      timeout: 100,
      onRedisError: 'memory',
      onError: (e) => errors.push(e),
    });
    const limiter = rateLimit({ windowMs: 60_000, limit: 2, store });
    const app = appWith(express5, limiter as unknown as express5.RequestHandler);
    proxy.set({ kind: 'blackhole' });
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(200);
    await request(app).get('/').expect(429);
    await expect(store.get('anyone')).resolves.toBeUndefined();
    await expect(store.resetKey('anyone')).resolves.toBeUndefined();
    await expect(store.resetAll()).resolves.toBeUndefined();
    expect(errors.length).toBeGreaterThan(0);
    expect(rejections.list).toEqual([]);
  });
});

describe.each<Topology>(['standalone', 'cluster'])('RedscaleStore on %s', (topology) => {
  it('counts, reports and resets every client, whatever slot its keys are on', async () => {
    const redis = connect(topology);
    const prefix = randomPrefix('erl-topology');
    const store = new RedscaleStore({ redis, prefix });
    erl8({ windowMs: 60_000, limit: 5, store });
    const keys = Array.from({ length: 20 }, (_, i) => `client-${i}`);
    for (const key of keys) expect((await store.increment(key)).totalHits).toBe(1);
    expect((await store.increment('client-0')).totalHits).toBe(2);
    await store.resetAll();
    expect(await countKeys(redis, prefix)).toBe(0);
    for (const key of keys) expect(await store.get(key)).toBeUndefined();
    redis.disconnect();
  });
});
