import 'reflect-metadata';
import { Controller, Get, type INestApplication, Inject, Module, type Type } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { ThrottlerGuard, ThrottlerModule } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RedisHealthIndicator, RedscaleModule, RedscaleThrottlerStorage } from '../../src/adapters/nestjs/index.js';
import { Cache, InvalidOptionError, type RedisLike } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, quiet, randomPrefix, type Topology } from '../harness/context.js';
import { FaultProxy, RedisServer, waitUntil } from '../harness/index.js';

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
    const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    return app;
  }
  const app = moduleRef.createNestApplication({ logger: false });
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
      expect(response.headers['x-ratelimit-reset-short']).toBe('1');
      // Windows start at the client's first hit: the reset is the whole ttl, as with the peers.
      expect(Number(response.headers['x-ratelimit-reset-medium'])).toBeGreaterThanOrEqual(59);
      expect(Number(response.headers['x-ratelimit-reset-long'])).toBeGreaterThanOrEqual(3_599);
      remaining.push(response.headers['x-ratelimit-remaining-short'] as string);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await request(server).get('/').expect(429);
    // Blocked for exactly blockDuration (the guard defaults it to the ttl, 1 s).
    expect(refused.headers['retry-after-short']).toBe('1');
    expect(refused.body).toMatchObject({ statusCode: 429 });
    await request(server).get('/').expect(429);
    // The block ends when Retry-After says, and counting starts afresh.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const after = await request(server).get('/').expect(200);
    expect(after.headers['x-ratelimit-remaining-short']).toBe('2');
    // The refused and blocked requests were not counted by the other throttlers.
    expect(after.headers['x-ratelimit-remaining-medium']).toBe('1');
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
    // Refused and blocked: Redis still answers (an unblock made there takes effect at once), in one command.
    expect((await countCommands(() => request(nest.getHttpServer()).get('/').expect(429))).count).toBe(1);
    const record = await storage.increment('direct-key', 60_000, 1, 30_000, 'manual');
    expect(record).toEqual({ totalHits: 1, timeToExpire: 60, isBlocked: false, timeToBlockExpire: 0 });
    const blocked = await storage.increment('direct-key', 60_000, 1, 30_000, 'manual');
    expect(blocked).toEqual({ totalHits: 2, timeToExpire: 60, isBlocked: true, timeToBlockExpire: 30 });
    await nest.close();
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('answers refusals in process only when asked to (localDenyCache)', async () => {
    const redis = connect('standalone');
    const prefix = randomPrefix('nest-deny-cache');
    const storage = new RedscaleThrottlerStorage({ redis, prefix, localDenyCache: { maxEntries: 100 } });
    await storage.increment('k', 60_000, 1, 30_000, 'default');
    await storage.increment('k', 60_000, 1, 30_000, 'default');
    const sent = await countCommands(() => storage.increment('k', 60_000, 1, 30_000, 'default'));
    expect(sent.count).toBe(0);
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });
});

describe.each<Topology>(['standalone', 'cluster'])('RedscaleThrottlerStorage on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('nest-storage');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('refuses everything for limit 0 (and below), without asking Redis', async () => {
    const storage = new RedscaleThrottlerStorage({ redis, prefix });
    await redis.ping();
    let record: unknown;
    const sent = await countCommands(async () => {
      record = await storage.increment('k0', 2_000, 0, 5_000, 'default');
    });
    expect(sent.count).toBe(0);
    expect(record).toEqual({ totalHits: 1, timeToExpire: 2, isBlocked: true, timeToBlockExpire: 5 });
    expect(await storage.increment('k0', 2_000, -1, 0, 'default')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 2,
    });
    // A fractional limit admits whole hits up to it, as the guard's comparison does.
    expect((await storage.increment('k-frac', 2_000, 1.5, 0, 'default')).isBlocked).toBe(false);
    expect((await storage.increment('k-frac', 2_000, 1.5, 0, 'default')).isBlocked).toBe(true);
  });

  it('counts throttlers whose names have braces or other key characters apart', async () => {
    const storage = new RedscaleThrottlerStorage({ redis, prefix });
    for (const name of ['api{v1}', '}{', 'a:b', '%7B']) {
      expect(await storage.increment('same-key', 10_000, 1, 0, name)).toMatchObject({ totalHits: 1, isBlocked: false });
    }
    expect(await storage.increment('same-key', 10_000, 1, 0, 'api{v1}')).toMatchObject({ isBlocked: true });
    expect(await storage.increment('same-key', 10_000, 1, 0, '{v1}')).toMatchObject({ isBlocked: false });
  });
});

describe('RedscaleThrottlerStorage options', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it('refuses unknown options, an anchor for a sliding window, and a ttl that is not a duration', async () => {
    expect(() => new RedscaleThrottlerStorage({ redis, blockmode: 'exact' } as never)).toThrow(
      /invalid option "blockmode" for RedscaleThrottlerStorage/,
    );
    expect(() => new RedscaleThrottlerStorage({ redis, algorithm: 'sliding-window', anchor: 'first-hit' })).toThrow(
      /invalid option "anchor"/,
    );
    const storage = new RedscaleThrottlerStorage({ redis, prefix: randomPrefix('nest-ttl') });
    await expect(storage.increment('k', 0, 5, 0, 'short')).rejects.toThrow(
      /invalid option "ttl" for the "short" throttler/,
    );
    await expect(storage.increment('k', Number.NaN, 5, 0, 'short')).rejects.toBeInstanceOf(InvalidOptionError);
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

describe('RedscaleThrottlerStorage on a plain ioredis client, when Redis stalls', () => {
  it('never counts a request it gave up on, when the client sends it late', async () => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    // ioredis' defaults: no command timeout, commands held while the link is stalled.
    const client = new Redis(proxy.url);
    const prefix = randomPrefix('nest-late');
    const storage = new RedscaleThrottlerStorage({ redis: client, prefix, timeout: 150, onRedisError: 'allow' });
    try {
      expect(await storage.increment('k', 60_000, 2, 0, 'default')).toMatchObject({ totalHits: 1, isBlocked: false });
      proxy.set({ kind: 'pause' });
      // Redis does not answer in time: the policy lets the request through, uncounted.
      expect(await storage.increment('k', 60_000, 2, 0, 'default')).toMatchObject({ isBlocked: false });
      proxy.pass();
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The stalled command reached Redis after the call had given up on it: it counted nothing.
      expect(await storage.increment('k', 60_000, 2, 0, 'default')).toMatchObject({ totalHits: 2, isBlocked: false });
    } finally {
      client.disconnect();
      await proxy.close();
      const cleaner = connect('standalone');
      await deletePrefix(cleaner, prefix);
      cleaner.disconnect();
    }
  });
});
