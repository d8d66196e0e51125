import { afterAll, describe, expect, it } from 'vitest';
import {
  fixedWindow,
  gcra,
  type LimitRule,
  RateLimiter,
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
    const errors: RedscaleError[] = [];
    const limiter = new RateLimiter({
      redis,
      prefix: `${prefix}:${name.replace(/\W+/g, '-')}`,
      limits,
      ...extra,
      localDenyCache: false,
      timeout: '5s',
      onError: (error) => errors.push(error),
    });
    // The bad identity's keys: made by a real check, then replaced by strings.
    await limiter.consume('bad');
    const badKeys: string[] = [];
    for await (const keys of scanEveryMaster(redis, { match: `${prefix}*bad*` })) badKeys.push(...keys);
    expect(badKeys.length).toBeGreaterThan(0);
    for (const key of badKeys) await redis.set(key, 'not a rate-limit state');
    // Every node knows the script; then a burst from idle in which the bad identity sits among
    // good ones after the first 8 (which go alone): those checks share script calls.
    const good = Array.from({ length: 10 }, (_, i) => `good-${i}`);
    await Promise.all(good.map((id) => limiter.peek(id)));
    await new Promise((resolve) => setImmediate(resolve));
    const order = [...good, ...good, 'bad', ...good, 'bad', ...good, 'bad'];
    let results: Awaited<ReturnType<RateLimiter['consume']>>[] = [];
    const log = await countCommands(async () => {
      results = await Promise.all(order.map((id) => limiter.consume(id)));
    });
    if (topology === 'standalone') expect(log.count).toBeLessThan(order.length);

    const byId = new Map<string, typeof results>();
    for (const [i, id] of order.entries()) {
      byId.set(id, [...(byId.get(id) ?? []), results[i] as (typeof results)[number]]);
    }
    // The good identities: every check answered by Redis, each counted once.
    for (const id of good) {
      const answers = byId.get(id) ?? [];
      expect(answers.map((result) => [result.source, result.allowed])).toEqual(Array(4).fill(['redis', true]));
      expect((await limiter.peek(id)).remaining).toBe(96);
    }
    // The bad one: answered by the fallback (the in-memory limiter), its errors reported, and
    // its keys left as they were (nothing wrote over them).
    expect((byId.get('bad') ?? []).map((result) => result.source)).toEqual(['memory', 'memory', 'memory']);
    expect(errors.length).toBe(3);
    for (const error of errors) expect(String(error.cause ?? error.message)).toMatch(/WRONGTYPE/);
    for (const key of badKeys) expect(await redis.get(key)).toBe('not a rate-limit state');
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
    const errors: RedscaleError[] = [];
    const limiterPrefix = `${prefix}:${name.replace(/\W+/g, '-')}`;
    const limiter = new RateLimiter({
      redis,
      prefix: limiterPrefix,
      limits,
      ...extra,
      localDenyCache: false,
      timeout: '5s',
      onError: (error) => errors.push(error),
    });
    await limiter.consume('bad');
    const badKeys: string[] = [];
    for await (const keys of scanEveryMaster(redis, { match: `${limiterPrefix}*bad*` })) badKeys.push(...keys);
    const last = badKeys.find((key) => key.endsWith('f86400000'));
    expect(last).toBeDefined();
    await redis.set(last as string, 'not a rate-limit state');
    const good = Array.from({ length: 10 }, (_, i) => `good-${i}`);
    await Promise.all(good.map((id) => limiter.peek(id)));
    await new Promise((resolve) => setImmediate(resolve));
    const order = [...good, 'bad', ...good, 'bad', ...good, 'bad', ...good, 'bad'];
    let results: Awaited<ReturnType<RateLimiter['consume']>>[] = [];
    const log = await countCommands(async () => {
      results = await Promise.all(order.map((id) => limiter.consume(id)));
    });
    expect(log.count).toBeLessThan(order.length);
    for (const id of good) {
      const mine = results.filter((_, i) => order[i] === id);
      expect(mine.map((result) => [result.source, result.allowed])).toEqual([
        ['redis', true],
        ['redis', true],
        ['redis', true],
        ['redis', false],
      ]);
      expect((mine[3] as (typeof mine)[number]).retryAfter).toBeGreaterThan(0);
      expect((await limiter.peek(id)).remaining).toBe(0);
    }
    expect(results.filter((_, i) => order[i] === 'bad').map((result) => result.source)).toEqual(
      Array(4).fill('memory'),
    );
    expect(errors.length).toBe(4);
  });
});
