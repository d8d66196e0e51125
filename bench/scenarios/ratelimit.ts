import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { Redis } from 'ioredis';
import { RedisStore } from 'rate-limit-redis';
import { BurstyRateLimiter, RateLimiterRedis, RateLimiterUnion } from 'rate-limiter-flexible';
import { fixedWindow, gcra, type LimitRule, RateLimiter, slidingLog, slidingWindow } from '../../src/index.js';
import { HandWrittenThrottlerStorage } from '../contenders/hand-written-throttler-storage.js';
import { cyclingNames } from '../lib/names.js';
import type { BenchContext, Contender, ContenderKind, Scenario } from '../lib/types.js';
import { bareGet } from './ceiling.js';

/** One rate-limit check for an identity, as each library does it. */
type Check = (id: string) => Promise<unknown>;

interface LimiterEntry {
  name: string;
  kind: ContenderKind;
  /** Builds the library's limiter allowing `limit` calls per hour, under its own key prefix. */
  make(ctx: BenchContext, limit: number): Promise<Check>;
}

const noop = () => undefined;
const HOUR = 3_600_000;

function redscale(
  name: string,
  rules: (limit: number) => LimitRule[],
  extra: { localDenyCache?: false; batch?: false } = {},
): LimiterEntry {
  return {
    name,
    kind: 'redscale',
    make: async (ctx, limit) => {
      const limiter = new RateLimiter({
        redis: ctx.redis,
        prefix: `${ctx.prefix}:${name}`,
        limits: rules(limit),
        ...extra,
      });
      return (id) => limiter.consume(id);
    },
  };
}

const PEERS: LimiterEntry[] = [
  {
    name: 'rate-limiter-flexible',
    kind: 'peer',
    make: async (ctx, limit) => {
      const limiter = new RateLimiterRedis({
        storeClient: ctx.redis,
        keyPrefix: `${ctx.prefix}:rlf`,
        points: limit,
        duration: HOUR / 1_000,
      });
      return (id) => limiter.consume(id).catch(noop);
    },
  },
  {
    name: 'rate-limit-redis',
    kind: 'peer',
    make: async (ctx) => {
      const redis = ctx.redis as Redis;
      const store = new RedisStore({
        prefix: `${ctx.prefix}:rlr:`,
        sendCommand: (command: string, ...args: string[]) => redis.call(command, ...args) as never,
      });
      store.init({ windowMs: HOUR } as never);
      return (id) => store.increment(id);
    },
  },
  {
    name: '@nest-lab/throttler-storage-redis',
    kind: 'peer',
    make: async (ctx, limit) => {
      const storage = new ThrottlerStorageRedisService(ctx.redis as Redis);
      return (id) => storage.increment(`${ctx.prefix}:nl:${id}`, HOUR, limit, HOUR, 'default');
    },
  },
  {
    name: 'hand-written ThrottlerStorage (TTL, INCR, EXPIRE…: 4–5 commands)',
    kind: 'hand-written',
    make: async (ctx, limit) => {
      const storage = new HandWrittenThrottlerStorage(ctx.redis as Redis);
      return (id) => storage.increment(`${ctx.prefix}:hand:${id}`, HOUR, limit, HOUR, 'default');
    },
  },
];

function contender(
  ctx: BenchContext,
  entry: LimiterEntry,
  limit: number,
  pick: () => string,
  warm?: (check: Check) => Promise<void>,
): Contender {
  return {
    name: entry.name,
    kind: entry.kind,
    setup: async () => {
      const check = await entry.make(ctx, limit);
      await warm?.(check);
      return () => check(pick());
    },
  };
}

const HUGE = 1_000_000_000;
/** A different identity on each call, cycling through 10,000 users. */
const anyUser = cyclingNames('user', 10_000);

const threeLimits = (limit: number) => [
  slidingWindow({ limit, window: '1s' }),
  fixedWindow({ limit, window: '1m' }),
  fixedWindow({ limit, window: '1d' }),
];

/** One limiter check per call, every call admitted: the hot path of every request. */
export const limiterCheck: Scenario = {
  name: 'limiter',
  description:
    'One check per call for one of 10,000 identities, every call admitted. redscale runs each algorithm with one limit, and three limits (sliding 1 s + fixed 1 min + fixed 1 day) checked and counted atomically in the same call, with its defaults (concurrent checks coalesced: one script call decides up to 16) and with `batch: false`; peers run one limit, and rate-limiter-flexible’s RateLimiterUnion three (three commands, each limit on its own).',
  contenders: (ctx) => [
    bareGet(ctx),
    ...[
      redscale('redscale fixedWindow', (limit) => [fixedWindow({ limit, window: '1h' })]),
      redscale('redscale fixedWindow (first-hit)', (limit) => [
        fixedWindow({ limit, window: '1h', anchor: 'first-hit' }),
      ]),
      redscale('redscale slidingWindow', (limit) => [slidingWindow({ limit, window: '1h' })]),
      redscale('redscale slidingLog', () => [slidingLog({ limit: 10_000, window: '1s' })]),
      // GCRA's burst × window is capped at 2^50 ms to stay exact, so its window is 1 s.
      redscale('redscale gcra', (limit) => [gcra({ limit, window: '1s', burst: limit })]),
      redscale('redscale 3 limits', threeLimits),
      redscale('redscale fixedWindow, batch: false', (limit) => [fixedWindow({ limit, window: '1h' })], {
        batch: false,
      }),
      redscale('redscale slidingWindow, batch: false', (limit) => [slidingWindow({ limit, window: '1h' })], {
        batch: false,
      }),
      redscale('redscale 3 limits, batch: false', threeLimits, { batch: false }),
      ...PEERS,
      {
        // rate-limiter-flexible's answer to bursts: a second limiter consulted when the first refuses.
        name: 'rate-limiter-flexible BurstyRateLimiter',
        kind: 'peer',
        make: async (ctx, limit) => {
          const limiter = new BurstyRateLimiter(
            new RateLimiterRedis({
              storeClient: ctx.redis,
              keyPrefix: `${ctx.prefix}:rlfb`,
              points: limit,
              duration: 1,
            }),
            new RateLimiterRedis({
              storeClient: ctx.redis,
              keyPrefix: `${ctx.prefix}:rlfb-burst`,
              points: limit,
              duration: 10,
            }),
          );
          return (id: string) => limiter.consume(id).catch(noop);
        },
      } satisfies LimiterEntry,
      {
        // What a peer offers for several limits: each checked and counted on its own (3 commands,
        // not all-or-nothing), in parallel. Fixed windows only: it has no sliding window.
        name: 'rate-limiter-flexible RateLimiterUnion, 3 limits (1 s + 1 min + 1 day)',
        kind: 'peer',
        make: async (ctx, limit) => {
          const union = new RateLimiterUnion(
            ...[1, 60, 86_400].map(
              (duration) =>
                new RateLimiterRedis({
                  storeClient: ctx.redis,
                  keyPrefix: `${ctx.prefix}:rlfu${duration}`,
                  points: limit,
                  duration,
                }),
            ),
          );
          return (id: string) => union.consume(id).catch(noop);
        },
      } satisfies LimiterEntry,
    ].map((entry) => contender(ctx, entry, HUGE, anyUser)),
  ],
};

/** What coalescing concurrent checks does at 1, 8 and 64 requests in flight. */
export const limiterBatching: Scenario = {
  name: 'limiter-batching',
  description:
    'The fixed-window check with batching on (the default) and off, beside a bare GET and the fastest peer, at 1, 8 and 64 checks in flight: batching must add no latency at low concurrency.',
  concurrencies: [1, 8, 64],
  contenders: (ctx) => [
    bareGet(ctx),
    ...[
      redscale('redscale fixedWindow (batch on)', (limit) => [fixedWindow({ limit, window: '1h' })]),
      redscale('redscale fixedWindow, batch: false', (limit) => [fixedWindow({ limit, window: '1h' })], {
        batch: false,
      }),
      ...PEERS.filter((peer) => peer.name === 'rate-limit-redis'),
    ].map((entry) => contender(ctx, entry, HUGE, anyUser)),
  ],
};

const FLOOD_LIMIT = 5;
const ABUSERS = 90;
let floodCounter = 0;
/** 90 of every 100 calls come from the 90 identities that are over their limit. */
const floodCaller = () => {
  const n = floodCounter++ % 100;
  return n < ABUSERS ? `abuser:${n}` : `user:${floodCounter}`;
};
/** Drives every abuser over the limit through the library itself. */
const exhaustAbusers = async (check: Check) => {
  for (let n = 0; n < ABUSERS; n++) for (let i = 0; i <= FLOOD_LIMIT; i++) await check(`abuser:${n}`);
};

/** A flood where 90% of calls are refused: what a limiter costs while it is under attack. */
export const limiterFlood: Scenario = {
  name: 'limiter-flood',
  description: `Abuse: 90% of calls come from 90 identities already over their limit (${FLOOD_LIMIT}/hour), 10% from new ones. A refused call costs each library what its design makes it cost.`,
  contenders: (ctx) => [
    bareGet(ctx),
    ...[
      redscale('redscale fixedWindow', (limit) => [fixedWindow({ limit, window: '1h' })]),
      redscale('redscale fixedWindow, localDenyCache: false', (limit) => [fixedWindow({ limit, window: '1h' })], {
        localDenyCache: false,
      }),
      ...PEERS,
      {
        name: 'rate-limiter-flexible (inMemoryBlockOnConsumed)',
        kind: 'peer',
        make: async (ctx, limit) => {
          const limiter = new RateLimiterRedis({
            storeClient: ctx.redis,
            keyPrefix: `${ctx.prefix}:rlf-mem`,
            points: limit,
            duration: HOUR / 1_000,
            inMemoryBlockOnConsumed: limit + 1,
            inMemoryBlockDuration: HOUR / 1_000,
          });
          return (id: string) => limiter.consume(id).catch(noop);
        },
      } satisfies LimiterEntry,
    ].map((entry) => contender(ctx, entry, FLOOD_LIMIT, floodCaller, exhaustAbusers)),
  ],
};
