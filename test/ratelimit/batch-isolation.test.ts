import { afterAll, describe, expect, it } from 'vitest';
import {
  fixedWindow,
  gcra,
  type LimitRule,
  RateLimiter,
  type RedisLike,
  type RedscaleError,
  scanEveryMaster,
  slidingLog,
  slidingWindow,
} from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const SHAPES: Array<[string, LimitRule[], { blockFor?: '1m' }]> = [
  ['fixed window', [fixedWindow({ limit: 100, window: '1m' })], {}],
  ['sliding window', [slidingWindow({ limit: 100, window: '1m' })], {}],
  ['first-hit window', [fixedWindow({ limit: 100, window: '1m', anchor: 'first-hit' })], {}],
  ['sliding log', [slidingLog({ limit: 100, window: '1m' })], {}],
  ['gcra', [gcra({ limit: 100, window: '1m' })], {}],
  [
    'three windows (lean script, flat reply)',
    [
      slidingWindow({ limit: 100, window: '1s' }),
      fixedWindow({ limit: 100, window: '1m' }),
      fixedWindow({ limit: 100, window: '1d' }),
    ],
    {},
  ],
  [
    'two limits and a block (general script)',
    [slidingWindow({ limit: 100, window: '1m' }), fixedWindow({ limit: 100, window: '1h' })],
    { blockFor: '1m' },
  ],
];

type Result = Awaited<ReturnType<RateLimiter['consume']>>;
const GOOD = Array.from({ length: 10 }, (_, i) => `good-${i}`);

/**
 * A limiter whose identity `bad` has the keys `spoil` picks (among those a real check made)
 * replaced by strings; then, from idle, every check of `order` at once: after the first 8, which
 * go alone, they share script calls on standalone. Returns each identity's results in order, the
 * errors the limiter reported, the spoiled keys, and how many commands the burst took.
 */
async function burstWithBadKey(
  redis: RedisLike,
  prefix: string,
  limits: LimitRule[],
  extra: { blockFor?: '1m' },
  spoil: (keys: string[]) => string[],
  order: string[],
) {
  const errors: RedscaleError[] = [];
  const limiter = new RateLimiter({
    redis,
    prefix,
    limits,
    ...extra,
    localDenyCache: false,
    timeout: '5s',
    onError: (error) => errors.push(error),
  });
  await limiter.consume('bad');
  const made: string[] = [];
  for await (const keys of scanEveryMaster(redis, { match: `${prefix}*bad*` })) made.push(...keys);
  const spoiled = spoil(made);
  expect(spoiled.length).toBeGreaterThan(0);
  for (const key of spoiled) await redis.set(key, 'not a rate-limit state');
  // Every node knows the script, and nothing is in flight.
  await Promise.all(GOOD.map((id) => limiter.peek(id)));
  await new Promise((resolve) => setImmediate(resolve));
  let results: Result[] = [];
  const log = await countCommands(async () => {
    results = await Promise.all(order.map((id) => limiter.consume(id)));
  });
  const resultsOf = (id: string) => results.filter((_, i) => order[i] === id);
  return { limiter, errors, spoiled, resultsOf, commands: log.count };
}

/**
 * One identity whose key holds another type (a key collision, data written by hand) fails its
 * own checks, and only those: the identities decided in the same script call are counted and
 * answered from Redis exactly as if it were not there. Before, a WRONGTYPE error aborted the
 * whole batched call after the identities before it had been counted, and every caller in it
 * got the error (and the fallback's answer) for a count that had happened.
 */
describe.each<Topology>(['standalone', 'cluster'])('a bad key in a batch, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('iso');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it.each(SHAPES)('%s: fails only its own checks', async (name, limits, extra) => {
    const order = [...GOOD, ...GOOD, 'bad', ...GOOD, 'bad', ...GOOD, 'bad'];
    const { limiter, errors, spoiled, resultsOf, commands } = await burstWithBadKey(
      redis,
      `${prefix}:${name.replace(/\W+/g, '-')}`,
      limits,
      extra,
      (keys) => keys,
      order,
    );
    if (topology === 'standalone') expect(commands).toBeLessThan(order.length);
    // The good identities: every check answered by Redis, each counted once.
    for (const id of GOOD) {
      expect(resultsOf(id).map((result) => [result.source, result.allowed])).toEqual(Array(4).fill(['redis', true]));
      expect((await limiter.peek(id)).remaining).toBe(96);
    }
    // The bad one: answered by the fallback (the in-memory limiter), its errors reported, and
    // its keys left as they were (nothing wrote over them).
    expect(resultsOf('bad').map((result) => result.source)).toEqual(['memory', 'memory', 'memory']);
    expect(errors.length).toBe(3);
    for (const error of errors) expect(String(error.cause ?? error.message)).toMatch(/WRONGTYPE/);
    for (const key of spoiled) expect(await redis.get(key)).toBe('not a rate-limit state');
  });
});

/**
 * The bad identity fails midway through its decision: only its last limit's key holds a string,
 * so its first limits have been read, written and counted when the error comes. The identities
 * after it in the same script call are still decided exactly: three admitted, then a refusal with
 * its wait, and (the general script) the block.
 */
describe('a bad last key in a batch, on standalone', () => {
  const redis = connect('standalone');
  const prefix = randomPrefix('iso-mid');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  const MIDWAY: Array<[string, LimitRule[], { blockFor?: '1m' }]> = [
    [
      'three windows (lean script, flat reply)',
      [
        fixedWindow({ limit: 3, window: '1h' }),
        slidingWindow({ limit: 100, window: '1m' }),
        fixedWindow({ limit: 100, window: '1d' }),
      ],
      {},
    ],
    [
      'three limits and a block (general script)',
      [
        slidingWindow({ limit: 100, window: '1m' }),
        fixedWindow({ limit: 3, window: '1h' }),
        fixedWindow({ limit: 100, window: '1d' }),
      ],
      { blockFor: '1m' },
    ],
  ];

  it.each(MIDWAY)('%s', async (name, limits, extra) => {
    const order = [...GOOD, 'bad', ...GOOD, 'bad', ...GOOD, 'bad', ...GOOD, 'bad'];
    const { limiter, errors, resultsOf, commands } = await burstWithBadKey(
      redis,
      `${prefix}:${name.replace(/\W+/g, '-')}`,
      limits,
      extra,
      (keys) => keys.filter((key) => key.endsWith('f86400000')),
      order,
    );
    expect(commands).toBeLessThan(order.length);
    for (const id of GOOD) {
      const mine = resultsOf(id);
      expect(mine.map((result) => [result.source, result.allowed])).toEqual([
        ['redis', true],
        ['redis', true],
        ['redis', true],
        ['redis', false],
      ]);
      expect((mine[3] as Result).retryAfter).toBeGreaterThan(0);
      expect((await limiter.peek(id)).remaining).toBe(0);
    }
    expect(resultsOf('bad').map((result) => result.source)).toEqual(Array(4).fill('memory'));
    expect(errors.length).toBe(4);
  });
});
