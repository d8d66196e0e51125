import 'reflect-metadata';
import { Controller, Get, type INestApplication, Inject, Module, type Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisHealthIndicator, RedscaleModule, RedscaleThrottlerStorage } from '../../src/adapters/nestjs/index.js';
import { Cache, type RedisLike } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';

@Controller()
class AppController {
  @Get()
  hello() {
    return { ok: true };
  }
}

@Controller('health')
class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(RedisHealthIndicator) private readonly redis: RedisHealthIndicator,
  ) {}

  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.redis.isHealthy('redis')]);
  }
}

/** The seed's throttlers (../shared/seeds/000, task 3), with a shorter "medium" to keep tests quick. */
const THROTTLERS = [
  { name: 'short', ttl: 1_000, limit: 3 },
  { name: 'medium', ttl: 60_000, limit: 5 },
  { name: 'long', ttl: 3_600_000, limit: 1_000 },
];

function appModule(redis: RedisLike, prefix: string, healthTimeout = 500): Type {
  @Module({
    imports: [
      RedscaleModule.forRoot({ redis, prefix, cache: false, health: { timeout: healthTimeout } }),
      ThrottlerModule.forRootAsync({
        inject: [RedscaleThrottlerStorage],
        useFactory: (storage: RedscaleThrottlerStorage) => ({ throttlers: THROTTLERS, storage }),
      }),
      TerminusModule,
    ],
    controllers: [AppController, HealthController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  })
  class AppModule {}
  return AppModule;
}

type Platform = 'express' | 'fastify';

async function start(module: Type, platform: Platform): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [module] }).compile();
  if (platform === 'fastify') {
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter());
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    return app;
  }
  const app = moduleRef.createNestApplication();
  await app.init();
  return app;
}

describe.each<Platform>(['express', 'fastify'])('a Nest application on %s', (platform) => {
  const redis = connect('standalone');
  const prefixes: string[] = [];
  const apps: INestApplication[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });
  async function app() {
    const prefix = randomPrefix(`nest-${platform}`);
    prefixes.push(prefix);
    const started = await start(appModule(redis, prefix), platform);
    apps.push(started);
    return started;
  }

  it('refuses the 4th request of a second with 429 and exactly the headers the guard sets, and the block ends', async () => {
    const nest = await app();
    const server = nest.getHttpServer();
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const response = await request(server).get('/').expect(200);
      expect(response.headers['x-ratelimit-limit-short']).toBe('3');
      expect(response.headers['x-ratelimit-limit-medium']).toBe('5');
      expect(response.headers['x-ratelimit-limit-long']).toBe('1000');
      expect(Number(response.headers['x-ratelimit-reset-short'])).toBeLessThanOrEqual(1);
      // Sliding windows are aligned to the epoch: the reset is the end of the current minute window.
      expect(Number(response.headers['x-ratelimit-reset-medium'])).toBeGreaterThan(0);
      expect(Number(response.headers['x-ratelimit-reset-medium'])).toBeLessThanOrEqual(60);
      remaining.push(response.headers['x-ratelimit-remaining-short'] as string);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await request(server).get('/').expect(429);
    // Blocked for blockDuration (the ttl, 1 s) and until the sliding window has room: 1 or 2 s,
    // depending on where in the second the three requests landed.
    const retryAfter = Number(refused.headers['retry-after-short']);
    expect([1, 2]).toContain(retryAfter);
    expect(refused.body).toMatchObject({ statusCode: 429 });
    await request(server).get('/').expect(429);
    // The block ends cleanly when Retry-After says.
    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1_000 + 50));
    const after = await request(server).get('/').expect(200);
    // A sliding window frees capacity gradually: the block ends when it admits again, with
    // the previous second still weighing on it.
    expect(['0', '1', '2']).toContain(after.headers['x-ratelimit-remaining-short']);
    expect(Number(after.headers['x-ratelimit-remaining-medium'])).toBeLessThanOrEqual(1);
  });

  it('refuses by whichever named throttler runs out, with its own Retry-After', async () => {
    const made = randomPrefix(`nest-minute-${platform}`);
    prefixes.push(made);
    @Module({
      imports: [
        RedscaleModule.forRoot({ redis, prefix: made, cache: false }),
        ThrottlerModule.forRootAsync({
          inject: [RedscaleThrottlerStorage],
          useFactory: (storage: RedscaleThrottlerStorage) => ({
            throttlers: [
              { name: 'short', ttl: 1_000, limit: 10 },
              { name: 'medium', ttl: 60_000, limit: 2 },
            ],
            storage,
          }),
        }),
      ],
      controllers: [AppController],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    })
    class MinuteModule {}
    const nest = await start(MinuteModule, platform);
    apps.push(nest);
    await request(nest.getHttpServer()).get('/').expect(200);
    await request(nest.getHttpServer()).get('/').expect(200);
    const refused = await request(nest.getHttpServer()).get('/').expect(429);
    expect(Number(refused.headers['retry-after-medium'])).toBeGreaterThan(0);
    expect(refused.headers['retry-after-short']).toBeUndefined();
  });

  it('serves a Terminus readiness endpoint with the indicator up', async () => {
    const nest = await app();
    const response = await request(nest.getHttpServer()).get('/health/ready').expect(200);
    expect(response.body).toMatchObject({
      status: 'ok',
      info: { redis: { status: 'up', redis: 'up', mode: 'standalone' } },
    });
  });

  it('provides the primitives by class and shuts down without touching a given client', async () => {
    const nest = await app();
    const storage = nest.get(RedscaleThrottlerStorage);
    expect(storage).toBeInstanceOf(RedscaleThrottlerStorage);
    expect(nest.get(Cache, { strict: false })).toBeNull();
    await nest.close();
    apps.splice(apps.indexOf(nest), 1);
    await expect(redis.ping()).resolves.toBe('PONG');
  });
});

describe('RedscaleThrottlerStorage used as @nest-lab/throttler-storage-redis is', () => {
  it('plugs into ThrottlerModule.forRoot directly, and costs one command per throttler per request', async () => {
    const redis = connect('standalone');
    const prefix = randomPrefix('nest-direct');
    const storage = new RedscaleThrottlerStorage({ redis, prefix });
    @Module({
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [
            { name: 'short', ttl: 1_000, limit: 2 },
            { name: 'long', ttl: 60_000, limit: 100 },
          ],
          storage,
        }),
      ],
      controllers: [AppController],
      providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
    })
    class DirectModule {}
    const nest = await start(DirectModule, 'express');
    await redis.ping();
    await request(nest.getHttpServer()).get('/').expect(200);
    const sent = await countCommands(() => request(nest.getHttpServer()).get('/').expect(200));
    expect(sent).toEqual({ count: 2, names: ['evalsha', 'evalsha'] });
    await request(nest.getHttpServer()).get('/').expect(429);
    // Refused and blocked: answered in-process, nothing sent.
    expect((await countCommands(() => request(nest.getHttpServer()).get('/').expect(429))).count).toBe(0);
    const record = await storage.increment('direct-key', 60_000, 1, 30_000, 'manual');
    expect(record).toEqual({ totalHits: 1, timeToExpire: expect.any(Number), isBlocked: false, timeToBlockExpire: 0 });
    const blocked = await storage.increment('direct-key', 60_000, 1, 30_000, 'manual');
    expect(blocked).toMatchObject({ totalHits: 2, isBlocked: true });
    expect(blocked.timeToBlockExpire).toBeGreaterThanOrEqual(30);
    expect(blocked.timeToExpire).toBeLessThanOrEqual(60);
    await nest.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });
});

describe.each<Topology>(['standalone', 'cluster'])('two Nest instances sharing one Redis (%s)', (topology) => {
  it('enforce one shared limit', async () => {
    const prefix = randomPrefix('nest-shared');
    const clients = [connect(topology), connect(topology)];
    const apps = await Promise.all(clients.map((client) => start(appModule(client, prefix), 'express')));
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await request(apps[i % 2]!.getHttpServer()).get('/')).status);
    // 3 per second across both instances, then refused on either.
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 429]);
    expect(statuses.slice(4).every((status) => status === 429)).toBe(true);
    for (const app of apps) await app.close();
    await deletePrefix(clients[0]!, prefix);
    for (const client of clients) client.disconnect();
  });
});

describe('the Nest module with a client it creates, when Redis dies', () => {
  it('turns /health/ready 503 within the timeout after Redis is killed, and quits its client on shutdown', async () => {
    const server = await RedisServer.start();
    @Module({
      imports: [
        RedscaleModule.forRootAsync({
          useFactory: () => ({ url: { url: server.url, onError: quiet }, cache: false, health: { timeout: 300 } }),
        }),
        TerminusModule,
      ],
      controllers: [HealthController],
    })
    class OwnModule {}
    const nest = await start(OwnModule, 'express');
    await request(nest.getHttpServer()).get('/health/ready').expect(200);
    await server.kill();
    const started = performance.now();
    const down = await request(nest.getHttpServer()).get('/health/ready').expect(503);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(down.body).toMatchObject({ status: 'error', error: { redis: { status: 'down', redis: 'down' } } });
    const client = nest.get<RedisLike>(Symbol.for('redscale:redis'));
    await server.restart();
    await waitUntil('the client to reconnect', async () => client.status === 'ready', 5_000);
    await nest.close();
    expect(client.status).toBe('end');
    await server.dispose();
  });
});
