import { Readable } from 'node:stream';
import express from 'express';
import express4 from 'express4';
import request from 'supertest';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { httpCache } from '../../src/adapters/express/index.js';
import type { HttpCacheOptions } from '../../src/index.js';
import { unhandledRejections } from '../harness/context.js';
import { FaultProxy, RedisServer, waitUntil } from '../harness/index.js';
import { get, type Instance, instances, sleep } from './support.js';

const rejections = unhandledRejections();

/** A service instance: one Express app with cached routes over `instance.cache`, counting handler runs. */
function service(instance: Instance, options: Partial<HttpCacheOptions<express.Request>> = {}) {
  const app = express();
  const runs = { count: 0, next: 0 };
  const errors: unknown[] = [];
  let version = 1;
  const cached = (extra: Partial<HttpCacheOptions<express.Request>> = {}) =>
    httpCache({ cache: instance.cache, ttl: '1m', onError: (error) => errors.push(error), ...options, ...extra });
  app.get('/items', cached({ tags: () => ['items'] }), async (_req, res) => {
    runs.count++;
    await sleep(150);
    res.json({ version, items: ['a', 'b'] });
  });
  app.post('/items', async (_req, res) => {
    version++;
    await instance.cache.invalidateTags(['items']);
    res.status(204).end();
  });
  app.get('/html', cached(), (_req, res) => {
    runs.count++;
    res.type('html').send('<p>héllo</p>');
  });
  app.get('/binary', cached(), (_req, res) => {
    runs.count++;
    res.type('application/octet-stream').send(Buffer.from([0, 255, 1, 254, 10, 13]));
  });
  app.get('/stream', cached(), (_req, res) => {
    runs.count++;
    res.type('text/plain');
    Readable.from(['one,', 'two,', 'three']).pipe(res);
  });
  app.get('/cookie', cached(), (_req, res) => {
    runs.count++;
    res.cookie('session', String(runs.count)).json({ n: runs.count });
  });
  app.get('/private', cached(), (_req, res) => {
    runs.count++;
    res.set('Cache-Control', 'private, max-age=60').json({ n: runs.count });
  });
  app.get('/private-ok', cached({ storePrivate: true }), (_req, res) => {
    runs.count++;
    res.set('Cache-Control', 'private, max-age=60').json({ n: runs.count });
  });
  app.get('/fails', cached(), (_req, res) => {
    runs.count++;
    res.status(500).json({ n: runs.count });
  });
  app.get('/missing', cached(), (_req, res) => {
    runs.count++;
    res.status(404).json({ n: runs.count });
  });
  app.get('/missing-cached', cached({ statuses: [200, 404] }), (_req, res) => {
    runs.count++;
    res.status(404).json({ n: runs.count });
  });
  app.get('/big', cached({ maxBodySize: 1_000 }), (_req, res) => {
    runs.count++;
    res.type('text/plain');
    Readable.from(Array.from({ length: 10 }, (_, i) => `${i}`.repeat(500))).pipe(res);
  });
  app.get('/lang', cached({ vary: ['accept-language'] }), (req, res) => {
    runs.count++;
    res.set('Vary', 'Accept-Language').json({ lang: req.headers['accept-language'] ?? 'none' });
  });
  app.get('/lang-unkeyed', cached(), (req, res) => {
    runs.count++;
    res.set('Vary', 'Accept-Language').json({ lang: req.headers['accept-language'] ?? 'none' });
  });
  app.get('/stale', cached({ ttl: '300ms', staleFor: '1m' }), (_req, res) => {
    runs.count++;
    res.json({ n: runs.count });
  });
  app.get('/next-once', cached(), (_req, _res, next) => {
    runs.next++;
    next();
  });
  app.get('/next-once', (_req, res) => {
    runs.count++;
    res.json({ ok: true });
  });
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    errors.push(error);
    res.status(500).end();
  });
  return { app, runs, errors, bump: () => version++ };
}

describe('httpCache() for Express', () => {
  const pool = instances('http-express');
  const servers: RedisServer[] = [];
  afterEach(async () => {
    await pool.dispose();
    pool.renew();
    expect(rejections.list).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('runs the handler once for 100 concurrent cold requests spread over two instances', async () => {
    // A generous Redis timeout: on a loaded machine a timed-out read is a miss that loads itself.
    const [a, b] = [service(await pool.make({ timeout: '3s' })), service(await pool.make({ timeout: '3s' }))];
    const urls = [await pool.listen(a.app), await pool.listen(b.app)];
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`${urls[i % 2]}/items`)));
    expect(a.runs.count + b.runs.count).toBe(1);
    expect(responses.map((response) => response.status)).toEqual(Array(100).fill(200));
    expect(new Set(responses.map((response) => response.text))).toEqual(new Set(['{"version":1,"items":["a","b"]}']));
    const statuses = responses.map((response) => response.headers.get('x-cache'));
    expect(statuses.filter((status) => status === 'MISS').length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((status) => status === 'MISS' || status === 'HIT')).toBe(true);
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('answers a matching If-None-Match with 304 and no body, and a different one with 200', async () => {
    const { app, runs } = service(await pool.make());
    const first = await request(app).get('/items').expect(200);
    expect(first.headers['x-cache']).toBe('MISS');
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^(W\/)?".+"$/);
    const again = await request(app).get('/items').set('If-None-Match', etag).expect(304);
    expect(again.text).toBe('');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.headers.etag).toBe(etag);
    const other = await request(app).get('/items').set('If-None-Match', '"nope"').expect(200);
    expect(other.body).toEqual({ version: 1, items: ['a', 'b'] });
    expect(Number(other.headers.age)).toBeGreaterThanOrEqual(0);
    expect(runs.count).toBe(1);
  });

  it('a cold request with If-None-Match still stores the full response (the handler never answers 304 into the cache)', async () => {
    const { app, runs } = service(await pool.make());
    const etag = (
      await request(express().get('/', (_req, res) => res.json({ version: 1, items: ['a', 'b'] }))).get('/')
    ).headers.etag as string;
    await request(app).get('/items').set('If-None-Match', etag).expect(304);
    const full = await request(app).get('/items').expect(200);
    expect(full.body).toEqual({ version: 1, items: ['a', 'b'] });
    expect(full.headers['x-cache']).toBe('HIT');
    expect(runs.count).toBe(1);
  });

  it('tag invalidation on one instance reaches the other', async () => {
    const [a, b] = [service(await pool.make()), service(await pool.make())];
    await request(a.app).get('/items').expect(200);
    expect((await request(b.app).get('/items')).headers['x-cache']).toBe('HIT');
    a.bump();
    b.bump();
    await request(b.app).post('/items').expect(204);
    const after = await request(a.app).get('/items').expect(200);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.body.version).toBe(2);
    expect(a.runs.count + b.runs.count).toBe(2);
  });

  it('stores non-JSON bodies byte for byte: HTML, binary, a piped stream', async () => {
    const { app, runs } = service(await pool.make());
    for (const path of ['/html', '/binary', '/stream']) {
      const miss = await get(await pool.listen(app).then((url) => `${url}${path}`));
      expect(miss.headers.get('x-cache')).toBe('MISS');
    }
    const url = await pool.listen(app);
    const html = await get(`${url}/html`);
    expect(html.headers.get('x-cache')).toBe('HIT');
    expect(html.text).toBe('<p>héllo</p>');
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    const binary = await get(`${url}/binary`);
    expect(binary.headers.get('x-cache')).toBe('HIT');
    expect([...binary.body]).toEqual([0, 255, 1, 254, 10, 13]);
    const stream = await get(`${url}/stream`);
    expect(stream.headers.get('x-cache')).toBe('HIT');
    expect(stream.text).toBe('one,two,three');
    expect(runs.count).toBe(3);
  });

  it.each([
    ['/cookie', 'a Set-Cookie response'],
    ['/private', 'Cache-Control: private'],
    ['/fails', 'a 500'],
    ['/missing', 'a 404 by default'],
    ['/lang-unkeyed', 'a Vary on a header the key does not include'],
  ])('never stores %s (%s): every request runs the handler', async (path) => {
    const { app, runs } = service(await pool.make());
    const first = await request(app).get(path);
    const second = await request(app).get(path);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.headers['x-cache']).toBe('MISS');
    expect(second.status).toBe(first.status);
    expect(runs.count).toBe(2);
    if (path === '/cookie') expect(second.headers['set-cookie']?.[0]).toMatch(/^session=2/);
  });

  it('never shares the response to a request with Authorization unless it is public or the key is yours', async () => {
    const instance = await pool.make();
    const app = express();
    let runs = 0;
    app.get('/me', httpCache({ cache: instance.cache }), (req, res) => {
      runs++;
      res.json({ user: req.headers.authorization });
    });
    app.get('/catalog', httpCache({ cache: instance.cache }), (_req, res) => {
      runs++;
      res.set('Cache-Control', 'public, max-age=60').json({ runs });
    });
    app.get(
      '/mine',
      httpCache({ cache: instance.cache, key: (req) => `mine:${req.headers.authorization}` }),
      (req, res) => {
        runs++;
        res.json({ user: req.headers.authorization });
      },
    );
    await request(app).get('/me').set('Authorization', 'Bearer alice').expect(200);
    const bob = await request(app).get('/me').set('Authorization', 'Bearer bob').expect(200);
    expect(bob.body).toEqual({ user: 'Bearer bob' });
    expect(bob.headers['x-cache']).toBe('MISS');
    await request(app).get('/catalog').set('Authorization', 'Bearer alice').expect(200);
    expect((await request(app).get('/catalog').set('Authorization', 'Bearer bob')).headers['x-cache']).toBe('HIT');
    await request(app).get('/mine').set('Authorization', 'Bearer alice').expect(200);
    const mine = await request(app).get('/mine').set('Authorization', 'Bearer alice').expect(200);
    expect(mine.headers['x-cache']).toBe('HIT');
    const other = await request(app).get('/mine').set('Authorization', 'Bearer bob').expect(200);
    expect(other.body).toEqual({ user: 'Bearer bob' });
    expect(runs).toBe(5);
  });

  it('stores what the route allows: private with storePrivate, 404 with statuses', async () => {
    const { app, runs } = service(await pool.make());
    for (const path of ['/private-ok', '/missing-cached']) {
      const first = await request(app).get(path);
      const second = await request(app).get(path);
      expect(second.headers['x-cache']).toBe('HIT');
      expect(second.status).toBe(first.status);
      expect(second.body).toEqual(first.body);
    }
    expect(runs.count).toBe(2);
  });

  it('streams a body over maxBodySize to the client whole and does not store it', async () => {
    const { app, runs } = service(await pool.make());
    const expected = Array.from({ length: 10 }, (_, i) => `${i}`.repeat(500)).join('');
    for (let i = 0; i < 2; i++) {
      const response = await request(app).get('/big').expect(200);
      expect(response.text).toBe(expected);
      expect(response.headers['x-cache']).toBe('MISS');
    }
    expect(runs.count).toBe(2);
  });

  it('keys configured Vary headers: one entry per Accept-Language', async () => {
    const { app, runs } = service(await pool.make());
    for (const lang of ['en', 'fr', 'en', 'fr']) {
      const response = await request(app).get('/lang').set('Accept-Language', lang).expect(200);
      expect(response.body).toEqual({ lang });
    }
    expect(runs.count).toBe(2);
  });

  it('sorts and decodes the query, so equivalent URLs share an entry', async () => {
    const { app, runs } = service(await pool.make());
    await request(app).get('/items?b=2&a=1').expect(200);
    const same = await request(app).get('/items?a=%31&b=2').expect(200);
    expect(same.headers['x-cache']).toBe('HIT');
    const other = await request(app).get('/items?a=1&b=3').expect(200);
    expect(other.headers['x-cache']).toBe('MISS');
    expect(runs.count).toBe(2);
  });

  it('answers HEAD from the stored GET response, without a body', async () => {
    const { app, runs } = service(await pool.make());
    await request(app).get('/html').expect(200);
    const head = await request(app).head('/html').expect(200);
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength('<p>héllo</p>')));
    expect(runs.count).toBe(1);
  });

  it('serves STALE within staleFor while one background request refreshes the entry', async () => {
    const { app, runs } = service(await pool.make());
    expect((await request(app).get('/stale')).body).toEqual({ n: 1 });
    await sleep(400);
    const stale = await request(app).get('/stale').expect(200);
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(stale.body).toEqual({ n: 1 });
    await waitUntil('the background refresh', async () => runs.count === 2);
    await waitUntil('the refreshed entry', async () => (await request(app).get('/stale')).body.n === 2);
    const fresh = await request(app).get('/stale');
    expect(fresh.headers['x-cache']).toBe('HIT');
    expect(runs.count).toBe(2);
  });

  it('refreshes a stale entry of a sub-app mounted under a path', async () => {
    const instance = await pool.make();
    const parent = express();
    const sub = express();
    let runs = 0;
    sub.get('/stale', httpCache({ cache: instance.cache, ttl: '300ms', staleFor: '1m' }), (_req, res) => {
      runs++;
      res.json({ n: runs });
    });
    parent.use('/api', sub);
    await request(parent).get('/api/stale').expect(200);
    await sleep(400);
    expect((await request(parent).get('/api/stale')).headers['x-cache']).toBe('STALE');
    await waitUntil('the refreshed entry', async () => (await request(parent).get('/api/stale')).body.n === 2);
    expect(runs).toBe(2);
  });

  it('calls next() once per request, with Redis up and with Redis down', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const up = service(await pool.make());
    await request(up.app).get('/next-once').expect(200);
    await request(up.app).get('/next-once').expect(200);
    expect(up.runs).toEqual({ count: 1, next: 1 });
    await server.kill();
    const down = service(await pool.make({ url: server.url }));
    for (let i = 0; i < 3; i++) await request(down.app).get('/next-once').expect(200);
    expect(down.runs).toEqual({ count: 3, next: 3 });
    expect(down.errors).toEqual([]);
  });

  it('with Redis killed, every request gets the handler’s 200 within the timeout', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const live = service(await pool.make({ url: server.url, timeout: '200ms' }));
    await request(live.app).get('/items').expect(200);
    expect((await request(live.app).get('/items')).headers['x-cache']).toBe('HIT');
    await server.kill();
    const url = await pool.listen(live.app);
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: 20 }, () => get(`${url}/items`)));
    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    expect(responses.every((response) => JSON.parse(response.text).version === 1)).toBe(true);
    // Generous on a loaded machine: what matters is that nothing waits for ioredis' reconnects.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(live.errors).toEqual([]);
  });

  it('with Redis stalled (paused), requests get the handler’s 200 within the timeout, and hits resume after', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    try {
      const live = service(await pool.make({ url: proxy.url, timeout: '200ms' }));
      await request(live.app).get('/items').expect(200);
      proxy.set({ kind: 'pause' });
      const url = await pool.listen(live.app);
      const started = Date.now();
      const responses = await Promise.all(Array.from({ length: 10 }, () => get(`${url}/items`)));
      expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
      expect(Date.now() - started).toBeLessThan(5_000);
      // Concurrent misses in one process still share one handler run while Redis is stalled.
      expect(responses.filter((response) => response.headers.get('x-cache') === 'MISS').length).toBeGreaterThanOrEqual(
        1,
      );
      expect(responses.every((response) => JSON.parse(response.text).version === 1)).toBe(true);
      expect(live.runs.count).toBeGreaterThanOrEqual(2);
      proxy.set({ kind: 'pass' });
      await waitUntil('hits again', async () => (await get(`${url}/items`)).headers.get('x-cache') === 'HIT', 15_000);
      expect(live.errors).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('still answers when the cache fails after the handler ran (a serializer that throws)', async () => {
    const broken = {
      serialize: () => {
        throw new Error('cannot serialize');
      },
      deserialize: (text: string) => JSON.parse(text),
    };
    const instance = await pool.make({ serializer: broken });
    const { app, runs, errors } = service(instance);
    for (let i = 0; i < 2; i++) {
      const response = await request(app).get('/html').expect(200);
      expect(response.text).toBe('<p>héllo</p>');
      expect(response.headers['x-cache']).toBe('MISS');
    }
    expect(runs.count).toBe(2);
    expect(errors.length).toBeGreaterThanOrEqual(1);
  });

  it('treats a tampered entry in Redis as a miss, never replaying its headers', async () => {
    const instance = await pool.make();
    const { app, runs } = service(instance);
    await instance.cache.set('http:GET:/html', {
      v: 1,
      s: 200,
      h: { 'x-evil': 'a\r\nset-cookie: stolen=1' },
      b: '',
      e: '"x"',
      t: Date.now(),
      f: 60_000,
    });
    const response = await request(app).get('/html').expect(200);
    expect(response.headers['x-cache']).toBe('MISS');
    expect(response.headers['x-evil']).toBeUndefined();
    expect(response.text).toBe('<p>héllo</p>');
    expect(runs.count).toBe(1);
  });
});

describe('httpCache() on a Redis Cluster', () => {
  const pool = instances('http-cluster', 'cluster');
  afterAll(() => pool.dispose());

  it('runs the handler once across two instances, and tag invalidation reaches the other', async () => {
    const [a, b] = [service(await pool.make({ timeout: '3s' })), service(await pool.make({ timeout: '3s' }))];
    const urls = [await pool.listen(a.app), await pool.listen(b.app)];
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => get(`${urls[i % 2]}/items`)));
    expect(responses.map((response) => response.status)).toEqual(Array(40).fill(200));
    expect(a.runs.count + b.runs.count).toBe(1);
    a.bump();
    await request(b.app).post('/items').expect(204);
    const after = await request(a.app).get('/items').expect(200);
    expect(after.headers['x-cache']).toBe('MISS');
    expect(after.body.version).toBe(2);
  });
});

describe('httpCache() on Express 4', () => {
  const pool = instances('http-express4');
  afterAll(() => pool.dispose());

  it('stores JSON and a piped stream, and answers 304', async () => {
    const { cache } = await pool.make();
    const app = (express4 as unknown as typeof express)();
    let runs = 0;
    app.get('/json', httpCache({ cache }), (_req, res) => {
      runs++;
      res.json({ runs });
    });
    app.get('/stream', httpCache({ cache }), (_req, res) => {
      runs++;
      Readable.from(['a', 'b']).pipe(res);
    });
    const first = await request(app).get('/json').expect(200);
    expect((await request(app).get('/json')).headers['x-cache']).toBe('HIT');
    await request(app)
      .get('/json')
      .set('If-None-Match', first.headers.etag as string)
      .expect(304);
    await request(app).get('/stream').expect(200);
    const stream = await request(app)
      .get('/stream')
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => done(null, text));
      });
    expect(stream.headers['x-cache']).toBe('HIT');
    expect(stream.body).toBe('ab');
    expect(runs).toBe(2);
  });
});
