import fastifyRateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, describe, inject, it, vi } from 'vitest';
import { redscaleStore } from '../../src/adapters/fastify/index.js';
import { createClient, type RedisLike } from '../../src/index.js';
import { connect, deletePrefix, quiet, randomPrefix } from '../harness/context.js';
import { FaultProxy } from '../harness/index.js';
import { expectSameObservations, type Observation, Recorder, runEach, sleep } from './support.js';

/**
 * The same Fastify app, run with @fastify/rate-limit's LocalStore, with its RedisStore and with
 * redscaleStore(), must answer every request alike: statuses, headers (times within a second),
 * bodies, bans, and what `{ increment: false }` reads.
 */
type Storage = 'local' | 'redis' | 'redscale';
const ALL: Storage[] = ['local', 'redis', 'redscale'];

const redis = connect('standalone');
const peerClient = new Redis(inject('redisUrl'));
const prefixes: string[] = [];
afterAll(async () => {
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  redis.disconnect();
  peerClient.disconnect();
});

function storeOptions(storage: Storage, client?: { peer: Redis; ours: RedisLike }): Partial<RateLimitPluginOptions> {
  if (storage === 'local') return {};
  const prefix = randomPrefix(`frl-conf-${storage}`);
  prefixes.push(prefix);
  if (storage === 'redis') return { redis: client?.peer ?? peerClient, nameSpace: `${prefix}:` };
  return { store: redscaleStore(client?.ours ?? redis, { prefix, timeout: 200 }) };
}

const WATCHED = [
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'retry-after',
  'x-body-retry-in',
];
const TIMES = ['x-ratelimit-reset', 'ratelimit-reset', 'retry-after', 'x-body-retry-in'];

interface Harness {
  storage: Storage;
  app: FastifyInstance;
  hit(step: string, path?: string, headers?: Record<string, string>): Promise<void>;
  /** Records an observation that is not a request (a `{ increment: false }` read). */
  note(step: string, body: unknown): void;
}

async function conform(
  storages: Storage[],
  options: Partial<RateLimitPluginOptions>,
  scenario: (h: Harness) => Promise<void>,
  routes: (app: FastifyInstance) => void = (app) => app.get('/', async () => 'ok'),
  client?: (storage: Storage) => { peer: Redis; ours: RedisLike },
) {
  const runs = await runEach(storages, async (storage): Promise<Observation[]> => {
    const app = Fastify();
    await app.register(fastifyRateLimit, { ...options, ...storeOptions(storage, client?.(storage)) });
    routes(app);
    await app.ready();
    const recorder = new Recorder(WATCHED);
    try {
      await scenario({
        storage,
        app,
        async hit(step, path = '/', headers = {}) {
          const response = await app.inject({ url: path, headers });
          // Error bodies of a failed Redis call name the client's error, which differs by design.
          const refusal = response.statusCode === 429 || response.statusCode === 403;
          const body = refusal ? (response.json() as { message?: string }) : undefined;
          // The message says when to retry ("retry in 10 seconds"): a time, compared within a second.
          const retryIn = body?.message?.match(/retry in (\d+)/)?.[1];
          if (body?.message) body.message = body.message.replace(/retry in \d+ seconds?/, 'retry in # second(s)');
          recorder.record(step, response.statusCode, { ...response.headers, 'x-body-retry-in': retryIn }, body);
        },
        note(step, body) {
          recorder.record(step, 0, {}, body);
        },
      });
    } finally {
      await app.close();
    }
    return recorder.observations;
  });
  const [reference, ...others] = storages as [Storage, ...Storage[]];
  for (const other of others) {
    expectSameObservations(runs[other], runs[reference], { timeHeaders: TIMES, label: `${other} vs ${reference}` });
  }
}

describe('@fastify/rate-limit: the stores answer alike', () => {
  it('first hit, limit reached: headers, Retry-After and the error body', async () => {
    await conform(ALL, { max: 3, timeWindow: 10_000 }, async ({ hit }) => {
      for (let i = 1; i <= 3; i++) await hit(`hit ${i}`);
      await hit('over the limit');
    });
  });

  it('draft-spec headers', async () => {
    await conform(ALL, { max: 2, timeWindow: 20_000, enableDraftSpec: true }, async ({ hit }) => {
      await hit('1');
      await hit('2');
      await hit('refused');
    });
  });

  it('window end: a new window starts with the first hit after the last one ended', async () => {
    await conform(ALL, { max: 1, timeWindow: 1_000 }, async ({ hit }) => {
      await hit('first');
      await hit('refused');
      await sleep(1_100);
      await hit('a fresh window');
    });
  });

  it('bans: past max + ban, a 403 until the window ends', async () => {
    await conform(ALL, { max: 2, timeWindow: 1_500, ban: 1 }, async ({ hit }) => {
      await hit('1');
      await hit('2');
      await hit('over: 429');
      await hit('banned: 403');
      await hit('still banned');
      await sleep(1_600);
      await hit('window over');
    });
  });

  it('continueExceeding: each request past max restarts the window, globally and on a route', async () => {
    const routes = (app: FastifyInstance) => {
      app.get('/', async () => 'global');
      app.get(
        '/route',
        { config: { rateLimit: { max: 1, timeWindow: 1_500, continueExceeding: true } } },
        async () => 'r',
      );
    };
    await conform(
      ALL,
      { max: 2, timeWindow: 1_500, continueExceeding: true },
      async ({ hit }) => {
        await hit('1');
        await hit('2');
        await hit('over: the window restarts');
        await sleep(1_000);
        await hit('still refused: restarted again');
        await hit('route 1', '/route');
        await hit('route over', '/route');
        await sleep(1_600);
        await hit('a fresh window');
      },
      routes,
    );
  });

  it('exponentialBackoff: the window doubles with each request past max', async () => {
    await conform(ALL, { max: 1, timeWindow: 1_000, exponentialBackoff: true }, async ({ hit }) => {
      await hit('1');
      await hit('over: 1 s');
      await hit('over again: 2 s');
      await hit('and again: 4 s');
      await hit('and again: 8 s');
    });
  });

  it("a test suite's fake timers (Date frozen at 0) do not change what the Redis stores answer", async () => {
    await conform(['redis', 'redscale'], { max: 2, timeWindow: 10_000 }, async ({ hit }) => {
      vi.useFakeTimers({ toFake: ['Date'], now: 0 });
      try {
        await hit('first');
        await hit('second');
        await hit('refused');
      } finally {
        vi.useRealTimers();
      }
    });
  });

  it('routes with their own limits count apart; a groupId shares one count', async () => {
    const routes = (app: FastifyInstance) => {
      app.get('/', async () => 'global');
      app.get('/strict', { config: { rateLimit: { max: 1, timeWindow: 20_000 } } }, async () => 'strict');
      app.get('/a', { config: { rateLimit: { max: 2, timeWindow: 20_000, groupId: 'ab' } } }, async () => 'a');
      app.get('/b', { config: { rateLimit: { max: 2, timeWindow: 20_000, groupId: 'ab' } } }, async () => 'b');
    };
    await conform(
      ALL,
      { max: 3, timeWindow: 20_000 },
      async ({ hit }) => {
        await hit('global', '/');
        await hit('strict', '/strict');
        await hit('strict refused', '/strict');
        await hit('global unaffected', '/');
        await hit('group a', '/a');
        await hit('group b', '/b');
        await hit('group refused', '/a');
      },
      routes,
    );
  });

  it('allowList and numeric keys', async () => {
    const options: Partial<RateLimitPluginOptions> = {
      max: 1,
      timeWindow: 20_000,
      keyGenerator: (request) => Number(request.headers['x-account'] ?? 0),
      allowList: (request) => request.headers['x-internal'] === '1',
    };
    await conform(ALL, options, async ({ hit }) => {
      await hit('account 5', '/', { 'x-account': '5' });
      await hit('account 5 refused', '/', { 'x-account': '5' });
      await hit('account 6', '/', { 'x-account': '6' });
      await hit('allow-listed', '/', { 'x-account': '5', 'x-internal': '1' });
    });
  });

  it('reads without counting ({ increment: false }): a clean state, then the count', async () => {
    await conform(
      ALL,
      { global: false },
      async ({ app, note }) => {
        const check = app.createRateLimit({ max: 3, timeWindow: 20_000 });
        const request = { ip: '10.1.2.3', headers: {}, routeOptions: { url: '/' } } as never;
        const seen = (result: Awaited<ReturnType<typeof check>>) =>
          'remaining' in result
            ? { remaining: result.remaining, seconds: Math.min(1, result.ttlInSeconds), exceeded: result.isExceeded }
            : result;
        note('unseen', seen(await check(request, { increment: false })));
        await check(request);
        await check(request);
        note('after two', seen(await check(request, { increment: false })));
        note('read again', seen(await check(request, { increment: false })));
      },
      () => {},
    );
  });
});

describe('@fastify/rate-limit when Redis stops answering: the Redis stores answer alike', () => {
  it.each([false, true])('skipOnError %s', async (skipOnError) => {
    const proxies: FaultProxy[] = [];
    const clients: Array<{ disconnect(): void }> = [];
    const client = (storage: Storage) => {
      const proxy = proxies[storage === 'redis' ? 0 : 1] as FaultProxy;
      const peer = new Redis(proxy.url, { commandTimeout: 200, maxRetriesPerRequest: 0 });
      peer.on('error', quiet);
      const ours = createClient({ url: proxy.url, onError: quiet });
      clients.push(peer, ours);
      return { peer, ours };
    };
    proxies.push(await FaultProxy.start(inject('redisUrl')), await FaultProxy.start(inject('redisUrl')));
    try {
      await conform(
        ['redis', 'redscale'],
        { max: 5, timeWindow: 20_000, skipOnError },
        async ({ hit, storage }) => {
          await hit('Redis answers');
          proxies[storage === 'redis' ? 0 : 1]?.set({ kind: 'blackhole' });
          await hit('Redis silent');
        },
        undefined,
        client,
      );
    } finally {
      for (const item of clients) item.disconnect();
      for (const proxy of proxies) await proxy.close();
    }
  });
});
