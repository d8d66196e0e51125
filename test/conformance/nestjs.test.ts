import 'reflect-metadata';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import {
  SkipThrottle,
  Throttle,
  ThrottlerGuard,
  ThrottlerModule,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import { Redis } from 'ioredis';
import request from 'supertest';
import { afterAll, describe, inject, it } from 'vitest';
import { RedscaleThrottlerStorage } from '../../src/adapters/nestjs/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';
import { expectSameObservations, type Observation, Recorder, runEach, sleep } from './support.js';

/**
 * The same Nest application, run with @nestjs/throttler's own in-memory storage, with
 * @nest-lab/throttler-storage-redis and with RedscaleThrottlerStorage, must answer every request
 * alike: statuses, X-RateLimit-* and Retry-After headers (times within a second) and bodies.
 */
type Storage = 'memory' | 'nest-lab' | 'redscale';
const ALL: Storage[] = ['memory', 'nest-lab', 'redscale'];

const redis = connect('standalone');
const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
  redis.disconnect();
});

@Controller()
class AppController {
  @Get()
  root() {
    return { ok: true };
  }

  @Get('other')
  other() {
    return { ok: true };
  }

  @SkipThrottle({ short: true })
  @Get('long-only')
  longOnly() {
    return { ok: true };
  }

  @SkipThrottle()
  @Get('free')
  free() {
    return { ok: true };
  }

  @Throttle({ default: { limit: 1, ttl: 1_000, blockDuration: 2_500 } })
  @Get('blocking')
  blocking() {
    return { ok: true };
  }
}

/** Where each run keeps its counts, and how to delete a client's keys there (an admin's unblock). */
interface Place {
  storage: ThrottlerStorage | undefined;
  unblock: () => Promise<unknown>;
}

function place(storage: Storage): Place {
  if (storage === 'memory') return { storage: undefined, unblock: async () => {} };
  const prefix = randomPrefix(`nest-conf-${storage}`);
  if (storage === 'nest-lab') {
    // @nest-lab writes `{<key>:<name>}:hits`; a keyPrefix keeps parallel test files apart.
    const client = new Redis(inject('redisUrl'), { keyPrefix: `${prefix}:` });
    cleanups.push(async () => {
      await deletePrefix(redis, prefix);
      client.disconnect();
    });
    return { storage: new ThrottlerStorageRedisService(client), unblock: () => deletePrefix(redis, prefix) };
  }
  cleanups.push(() => deletePrefix(redis, prefix));
  return { storage: new RedscaleThrottlerStorage({ redis, prefix }), unblock: () => deletePrefix(redis, prefix) };
}

async function start(options: ThrottlerModuleOptions & object, storage: Place, platform: 'express' | 'fastify') {
  const moduleRef = await Test.createTestingModule({
    imports: [
      ThrottlerModule.forRoot({
        ...(Array.isArray(options) ? { throttlers: options } : options),
        ...(storage.storage && { storage: storage.storage }),
      }),
    ],
    controllers: [AppController],
    providers: [{ provide: APP_GUARD, useClass: ThrottlerGuard }],
  }).compile();
  let app: INestApplication;
  if (platform === 'fastify') {
    app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter(), { logger: false });
    await app.init();
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  } else {
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  }
  cleanups.push(() => app.close());
  return app;
}

const NAMES = ['', '-short', '-long'];
const WATCHED = NAMES.flatMap((n) => [
  `x-ratelimit-limit${n}`,
  `x-ratelimit-remaining${n}`,
  `x-ratelimit-reset${n}`,
  `retry-after${n}`,
]);
const TIMES = WATCHED.filter((name) => name.startsWith('x-ratelimit-reset') || name.startsWith('retry-after'));

type Step = (step: string, path?: string, headers?: Record<string, string>) => Promise<void>;

/** Runs `scenario` against an app per storage and compares each run with the first storage's. */
async function conform(
  storages: Storage[],
  options: ThrottlerModuleOptions & object,
  scenario: (hit: Step, unblock: () => Promise<unknown>) => Promise<void>,
  platform: 'express' | 'fastify' = 'express',
) {
  const runs = await runEach(storages, async (storage): Promise<Observation[]> => {
    const where = place(storage);
    const app = await start(options, where, platform);
    const recorder = new Recorder(WATCHED);
    await scenario(async (step, path = '/', headers = {}) => {
      const response = await request(app.getHttpServer()).get(path).set(headers);
      recorder.record(step, response.status, response.headers, response.status === 429 ? response.body : undefined);
    }, where.unblock);
    return recorder.observations;
  });
  const [reference, ...others] = storages as [Storage, ...Storage[]];
  for (const other of others) {
    expectSameObservations(runs[other], runs[reference], { timeHeaders: TIMES, label: `${other} vs ${reference}` });
  }
}

describe.each(['express', 'fastify'] as const)('NestJS on %s: the storages answer alike', (platform) => {
  it('first hit, limit reached and headers: a window that starts at the first hit', async () => {
    await conform(
      ALL,
      [{ limit: 3, ttl: 10_000 }],
      async (hit) => {
        for (let i = 1; i <= 3; i++) await hit(`hit ${i}`);
        await hit('over the limit');
        await hit('another route counts apart', '/other');
      },
      platform,
    );
  });
});

describe('NestJS: the storages answer alike', () => {
  it('window end: a new window starts with the first hit after the last one ended', async () => {
    await conform(ALL, [{ limit: 1, ttl: 1_000 }], async (hit) => {
      await hit('first');
      await sleep(1_100);
      await hit('1.1 s later, at 1/s');
      await hit('at once again');
    });
  });

  it('a burst: the 6th hit within a second at 5/s is refused', async () => {
    await conform(ALL, [{ limit: 5, ttl: 1_000 }], async (hit) => {
      for (let i = 1; i <= 6; i++) await hit(`hit ${i}`);
    });
  });

  it('block and unblock: blocked for exactly blockDuration, not counted, then counted afresh', async () => {
    await conform(ALL, [{ limit: 10, ttl: 60_000 }], async (hit) => {
      await hit('first', '/blocking');
      await hit('refused, block starts', '/blocking');
      await sleep(1_200);
      await hit('window over, still blocked', '/blocking');
      await sleep(1_500);
      await hit('block over: a fresh count', '/blocking');
      await hit('over again', '/blocking');
    });
  });

  it('a block shorter than the window: when it ends, counting starts afresh', async () => {
    // @nest-lab differs here: it keeps counting while blocked, so the first hit after the block,
    // still inside the window, is over the limit again and blocks anew.
    await conform(['memory', 'redscale'], [{ limit: 1, ttl: 5_000, blockDuration: 1_000 }], async (hit) => {
      await hit('first');
      await hit('refused, blocked for 1 s');
      await sleep(1_200);
      await hit('block over, window not: a fresh count');
      await hit('over again');
    });
  });

  it('blockDuration 0: refusals until the window has room, the refused hits not counted', async () => {
    // @nest-lab cannot run this: it sends SET … PX 0, which Redis refuses (a 500 on every refusal).
    await conform(['memory', 'redscale'], [{ limit: 2, ttl: 2_000, blockDuration: 0 }], async (hit) => {
      await hit('1');
      await hit('2');
      await hit('3 refused');
      await sleep(900);
      await hit('4 refused, not counted');
      await sleep(1_300);
      await hit('window over');
    });
  });

  it('limit 0 refuses every request with a 429', async () => {
    await conform(ALL, [{ limit: 0, ttl: 1_000 }], async (hit) => {
      await hit('first');
      await hit('second');
    });
  });

  it('named throttlers: each counts and refuses with its own suffixed headers', async () => {
    const throttlers = [
      { name: 'short', limit: 1, ttl: 1_000 },
      { name: 'long', limit: 3, ttl: 6_000 },
    ];
    await conform(ALL, throttlers, async (hit) => {
      await hit('1');
      await hit('refused by short');
      await sleep(1_100);
      await hit('2');
      await sleep(1_100);
      await hit('3');
      await sleep(1_100);
      await hit('refused by long');
    });
  });

  it('skips: @SkipThrottle for one throttler or all, and ignored user agents', async () => {
    const options = {
      throttlers: [
        { name: 'short', limit: 1, ttl: 1_000 },
        { name: 'long', limit: 5, ttl: 10_000 },
      ],
      ignoreUserAgents: [/^probe\//],
    };
    await conform(ALL, options, async (hit) => {
      await hit('long only', '/long-only');
      await hit('long only again', '/long-only');
      await hit('free', '/free');
      await hit('ignored agent', '/', { 'user-agent': 'probe/1.0' });
      await hit('counted', '/');
    });
  });

  it('a throttler named with braces counts like any other', async () => {
    // Header names cannot carry braces, so the app turns headers off, as it must with any storage.
    const options = { throttlers: [{ name: 'api{v1}', limit: 2, ttl: 2_000 }], setHeaders: false };
    await conform(ALL, options, async (hit) => {
      await hit('1');
      await hit('2');
      await hit('refused');
    });
  });

  it("an admin's unblock in Redis takes effect at once (no answer from process memory)", async () => {
    await conform(['nest-lab', 'redscale'], [{ limit: 1, ttl: 60_000 }], async (hit, unblock) => {
      await hit('first');
      await hit('refused');
      await hit('still refused');
      await unblock();
      await hit('after the keys were deleted');
    });
  });
});
