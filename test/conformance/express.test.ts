import express5 from 'express';
import { rateLimit as erl8, MemoryStore as MemoryStore8, type Options, type Store } from 'express-rate-limit';
import { rateLimit as erl7, MemoryStore as MemoryStore7 } from 'express-rate-limit7';
import express4 from 'express4';
import { RedisStore } from 'rate-limit-redis';
import request from 'supertest';
import { afterAll, describe, it } from 'vitest';
import { RedscaleStore } from '../../src/adapters/express/index.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';
import { expectSameObservations, type Observation, Recorder, runEach, sleep } from './support.js';

/**
 * The same Express app, run with express-rate-limit's MemoryStore, with rate-limit-redis and with
 * RedscaleStore, must answer every request alike: statuses, RateLimit/X-RateLimit/Retry-After
 * headers (times within a second), bodies and what the store reports (getKey).
 */
type Storage = 'memory' | 'rate-limit-redis' | 'redscale';
const ALL: Storage[] = ['memory', 'rate-limit-redis', 'redscale'];

type ExpressLike = typeof express5;
type RateLimitFn = typeof erl8;
interface Flavour {
  name: string;
  express: ExpressLike;
  rateLimit: RateLimitFn;
  memory: new () => Store;
}
const ERL8_EXPRESS5: Flavour = {
  name: 'express-rate-limit 8 on Express 5',
  express: express5,
  rateLimit: erl8,
  memory: MemoryStore8,
};
const FLAVOURS: Flavour[] = [
  ERL8_EXPRESS5,
  {
    name: 'express-rate-limit 8 on Express 4',
    express: express4 as unknown as ExpressLike,
    rateLimit: erl8,
    memory: MemoryStore8,
  },
  {
    name: 'express-rate-limit 7 on Express 5',
    express: express5,
    rateLimit: erl7 as unknown as RateLimitFn,
    memory: MemoryStore7 as unknown as new () => Store,
  },
  {
    name: 'express-rate-limit 7 on Express 4',
    express: express4 as unknown as ExpressLike,
    rateLimit: erl7 as unknown as RateLimitFn,
    memory: MemoryStore7 as unknown as new () => Store,
  },
];

const redis = connect('standalone');
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  redis.disconnect();
});

function storeFor(storage: Storage, flavour: Flavour): Store {
  if (storage === 'memory') return new flavour.memory();
  const prefix = randomPrefix(`erl-conf-${storage}`);
  prefixes.push(prefix);
  if (storage === 'rate-limit-redis') {
    return new RedisStore({
      prefix: `${prefix}:`,
      sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as Promise<never>,
    });
  }
  return new RedscaleStore({ redis, prefix });
}

const WATCHED = [
  'ratelimit',
  'ratelimit-policy',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'retry-after',
];
const TIMES = ['ratelimit-reset', 'x-ratelimit-reset', 'retry-after'];

interface Harness {
  hit(step: string, path?: string): Promise<void>;
  /** Records what the store reports for a key (`getKey`), as a body. */
  report(step: string, key: string): Promise<void>;
  limiter: ReturnType<RateLimitFn>;
  store: Store;
}

async function conform(
  storages: Storage[],
  options: Partial<Options>,
  scenario: (h: Harness) => Promise<void>,
  flavour: Flavour = ERL8_EXPRESS5,
) {
  const runs = await runEach(storages, async (storage): Promise<Observation[]> => {
    const store = storeFor(storage, flavour);
    const limiter = flavour.rateLimit({ ...options, store });
    const app = flavour.express();
    app.use(limiter as unknown as express5.RequestHandler);
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    app.get('/fails', (_req, res) => {
      res.status(500).send('failed');
    });
    const recorder = new Recorder(WATCHED);
    await scenario({
      limiter,
      store,
      async hit(step, path = '/') {
        const response = await request(app).get(path);
        recorder.record(step, response.status, response.headers, response.status === 429 ? response.text : undefined);
      },
      async report(step, key) {
        const info = await limiter.getKey(key);
        // A store may say "nothing counted" as undefined or as 0 hits (rate-limit-redis: NaN
        // on an ioredis client, whose GET of a missing key is null, not false).
        const hits = info?.totalHits || 0;
        const resetIn =
          hits && info?.resetTime ? Math.ceil((info.resetTime.getTime() - Date.now()) / 1_000) : undefined;
        recorder.record(step, 200, { 'retry-after': resetIn === undefined ? undefined : String(resetIn) }, { hits });
      },
    });
    return recorder.observations;
  });
  const [reference, ...others] = storages as [Storage, ...Storage[]];
  for (const other of others) {
    expectSameObservations(runs[other], runs[reference], {
      timeHeaders: TIMES,
      label: `${flavour.name}: ${other} vs ${reference}`,
    });
  }
}

const IP = '::ffff:127.0.0.1';

describe.each(FLAVOURS)('$name: the stores answer alike', (flavour) => {
  it('first hit, limit reached, window reset and Retry-After, with draft-7 and legacy headers', async () => {
    const options = { windowMs: 10_000, limit: 3, standardHeaders: 'draft-7', legacyHeaders: true } as const;
    await conform(
      ALL,
      options,
      async ({ hit }) => {
        for (let i = 1; i <= 3; i++) await hit(`hit ${i}`);
        await hit('over the limit');
      },
      flavour,
    );
  });
});

describe('express-rate-limit 8 on Express 5: the stores answer alike', () => {
  it.each(['draft-6', 'draft-8'] as const)('first hit and limit reached with %s headers', async (standardHeaders) => {
    await conform(ALL, { windowMs: 20_000, limit: 2, standardHeaders, legacyHeaders: false }, async ({ hit }) => {
      await hit('1');
      await hit('2');
      await hit('refused');
    });
  });

  it('window end: a new window starts with the first hit after the last one ended', async () => {
    await conform(ALL, { windowMs: 1_000, limit: 1, standardHeaders: 'draft-7' }, async ({ hit }) => {
      await hit('first');
      await hit('refused');
      await sleep(1_100);
      await hit('a fresh window');
      await hit('refused again');
    });
  });

  it('skipped requests are given back (skipFailedRequests / skipSuccessfulRequests: decrement)', async () => {
    await conform(
      ALL,
      { windowMs: 20_000, limit: 2, skipFailedRequests: true, standardHeaders: 'draft-7' },
      async ({ hit }) => {
        for (let i = 1; i <= 3; i++) await hit(`failed ${i}`, '/fails');
        await hit('1');
        await hit('2');
        await hit('refused');
      },
    );
    await conform(
      ALL,
      { windowMs: 20_000, limit: 2, skipSuccessfulRequests: true, standardHeaders: 'draft-7' },
      async ({ hit }) => {
        for (let i = 1; i <= 3; i++) await hit(`succeeded ${i}`);
        await hit('failed 1', '/fails');
        await hit('failed 2', '/fails');
        await hit('refused', '/fails');
      },
    );
  });

  it('resetKey lets a client in again, and the store reports what it counted (getKey)', async () => {
    await conform(ALL, { windowMs: 20_000, limit: 2, standardHeaders: 'draft-7' }, async ({ hit, report, limiter }) => {
      await report('unseen', IP);
      await hit('1');
      await report('after one', IP);
      await hit('2');
      await hit('refused');
      await report('after three', IP);
      await limiter.resetKey(IP);
      await report('after resetKey', IP);
      await hit('counted afresh');
    });
  });

  it('per-request limits over one shared count, and skipped requests', async () => {
    const options: Partial<Options> = {
      windowMs: 20_000,
      limit: (req) => (req.query.plan === 'pro' ? 4 : 2),
      skip: (req) => req.query.internal === '1',
      standardHeaders: 'draft-7',
    };
    await conform(ALL, options, async ({ hit }) => {
      await hit('free 1', '/');
      await hit('free 2', '/');
      await hit('free refused', '/');
      await hit('pro, same count', '/?plan=pro');
      await hit('internal, not counted', '/?internal=1');
      await hit('pro refused', '/?plan=pro');
    });
  });

  it('resetAll lets every client in again (stores that have it)', async () => {
    // rate-limit-redis has no resetAll.
    await conform(
      ['memory', 'redscale'],
      { windowMs: 20_000, limit: 1, standardHeaders: 'draft-7' },
      async ({ hit, store }) => {
        await hit('1');
        await hit('refused');
        await store.resetAll?.();
        await hit('after resetAll');
      },
    );
  });
});
