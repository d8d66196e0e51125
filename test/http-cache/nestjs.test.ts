import 'reflect-metadata';
import { Controller, Get, type INestApplication, Inject, Post, Res, UseInterceptors } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Response } from 'express';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HttpCached, HttpCacheInterceptor, RedscaleModule } from '../../src/adapters/nestjs/index.js';
import { Cache, createClient, type Duration, InvalidOptionError, type RedisLike } from '../../src/index.js';
import { quiet, unhandledRejections } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';
import { get, instances, sleep } from './support.js';

const rejections = unhandledRejections();
const runs = { count: 0, version: 1 };

@Controller('items')
@UseInterceptors(HttpCacheInterceptor)
class ItemsController {
  constructor(@Inject(Cache) private readonly cache: Cache) {}

  @Get()
  @HttpCached({ ttl: '1m', tags: () => ['items'] })
  async list() {
    runs.count++;
    await sleep(150);
    return { version: runs.version, items: ['a', 'b'] };
  }

  @Post()
  async add() {
    runs.version++;
    await this.cache.invalidateTags(['items']);
    return { ok: true };
  }

  @Get('session')
  @HttpCached()
  session(@Res({ passthrough: true }) res: Response) {
    runs.count++;
    res.setHeader('Set-Cookie', `s=${runs.count}`);
    return { n: runs.count };
  }

  @Get('stale')
  @HttpCached({ ttl: '300ms', staleFor: '1m' })
  stale() {
    runs.count++;
    return { n: runs.count };
  }

  @Get('plain')
  plain() {
    runs.count++;
    return { n: runs.count };
  }
}

describe('HttpCacheInterceptor for Nest', () => {
  const pool = instances('http-nest');
  const apps: INestApplication[] = [];
  const servers: RedisServer[] = [];

  async function nestApp(redis: RedisLike, platform: 'express' | 'fastify' = 'express', timeout: Duration = '3s') {
    const moduleRef = await Test.createTestingModule({
      imports: [RedscaleModule.forRoot({ redis, prefix: pool.prefix, cache: { timeout } })],
      controllers: [ItemsController],
    }).compile();
    const app =
      platform === 'express'
        ? moduleRef.createNestApplication({ logger: false })
        : moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    apps.push(app);
    await app.listen(0, '127.0.0.1');
    return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
  }

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    await pool.dispose();
    pool.renew();
    runs.count = 0;
    runs.version = 1;
    expect(rejections.list).toEqual([]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('runs the handler once for 100 concurrent cold requests spread over two app instances', async () => {
    const a = await nestApp((await pool.make()).redis);
    const b = await nestApp((await pool.make()).redis);
    await a.app.get(Cache).whenReady();
    await b.app.get(Cache).whenReady();
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => get(`${(i % 2 ? a : b).url}/items`)));
    expect(runs.count).toBe(1);
    expect(responses.map((response) => response.status)).toEqual(Array(100).fill(200));
    expect(new Set(responses.map((response) => response.text))).toEqual(new Set(['{"version":1,"items":["a","b"]}']));
    expect(responses.every((response) => ['HIT', 'MISS'].includes(String(response.headers.get('x-cache'))))).toBe(true);
  });

  it('answers a matching If-None-Match with 304, and invalidation on one instance reaches the other', async () => {
    const a = await nestApp((await pool.make()).redis);
    const b = await nestApp((await pool.make()).redis);
    await a.app.get(Cache).whenReady();
    await b.app.get(Cache).whenReady();
    const first = await get(`${a.url}/items`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const etag = String(first.headers.get('etag'));
    const notModified = await get(`${b.url}/items`, { 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('x-cache')).toBe('HIT');
    expect((await fetch(`${b.url}/items`, { method: 'POST' })).status).toBe(201);
    const after = await get(`${a.url}/items`, { 'if-none-match': etag });
    expect(after.status).toBe(200);
    expect(after.headers.get('x-cache')).toBe('MISS');
    expect(JSON.parse(after.text).version).toBe(2);
    expect(runs.count).toBe(2);
  });

  it('never stores a Set-Cookie response, and leaves unmarked routes alone', async () => {
    const { url } = await nestApp((await pool.make()).redis);
    const first = await get(`${url}/items/session`);
    const second = await get(`${url}/items/session`);
    expect(second.headers.get('x-cache')).toBe('MISS');
    expect(second.headers.get('set-cookie')).toBe('s=2');
    const plain = await get(`${url}/items/plain`);
    expect(plain.headers.get('x-cache')).toBeNull();
    expect([first.status, second.status, plain.status]).toEqual([200, 200, 200]);
    expect(runs.count).toBe(3);
  });

  it('refuses a bad option when the class is defined', () => {
    expect(() => {
      class Bad {
        @HttpCached({ statuses: [500] })
        list() {
          return [];
        }
      }
      return Bad;
    }).toThrow(InvalidOptionError);
    expect(() => HttpCached({ ttl: 'soon' as Duration })({}, 'list', { value: () => 1 })).toThrow(
      /invalid option "ttl" for @HttpCached\(\) on list/,
    );
  });

  it('works on the Fastify platform: MISS, then HIT and 304', async () => {
    const { url } = await nestApp((await pool.make()).redis, 'fastify');
    const first = await get(`${url}/items`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const hit = await get(`${url}/items`);
    expect(hit.headers.get('x-cache')).toBe('HIT');
    expect(hit.text).toBe(first.text);
    const notModified = await get(`${url}/items`, { 'if-none-match': String(first.headers.get('etag')) });
    expect(notModified.status).toBe(304);
    expect(runs.count).toBe(1);
  });

  it.each(['express', 'fastify'] as const)(
    'serves STALE on the %s platform while an internal request refreshes the entry',
    async (platform) => {
      const { url } = await nestApp((await pool.make()).redis, platform);
      expect(JSON.parse((await get(`${url}/items/stale`)).text)).toEqual({ n: 1 });
      await sleep(400);
      const stale = await get(`${url}/items/stale`);
      expect(stale.headers.get('x-cache')).toBe('STALE');
      expect(JSON.parse(stale.text)).toEqual({ n: 1 });
      await waitUntil('the refreshed entry', async () => JSON.parse((await get(`${url}/items/stale`)).text).n === 2);
      expect((await get(`${url}/items/stale`)).headers.get('x-cache')).toBe('HIT');
      expect(runs.count).toBe(2);
    },
  );

  it('with Redis killed, every request gets the handler’s 200 within the timeout', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const { url } = await nestApp(redis, 'express', '200ms');
    await server.kill();
    const started = Date.now();
    const responses = await Promise.all(Array.from({ length: 20 }, () => get(`${url}/items`)));
    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
    expect(Date.now() - started).toBeLessThan(5_000);
    redis.disconnect();
  });
});
