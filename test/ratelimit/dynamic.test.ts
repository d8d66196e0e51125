import { afterAll, describe, expect, it } from 'vitest';
import {
  createClient,
  fixedWindow,
  gcra,
  InvalidOptionError,
  type LimitRule,
  RateLimiter,
  slidingWindow,
} from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { quiet, randomPrefix } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';
import { BACKENDS, limiterFactory, testClock } from './support.js';

/** Plans of one API: the same algorithms and windows, different numbers. */
const PLANS = {
  free: [fixedWindow({ limit: 3, window: '1m' }), gcra({ limit: 1, window: '1s', burst: 3 })],
  pro: [fixedWindow({ limit: 10, window: '1m' }), gcra({ limit: 5, window: '1s', burst: 10 })],
} satisfies Record<string, LimitRule[]>;

describe.each(BACKENDS)('limits chosen per call on %s', (backend) => {
  const factory = limiterFactory(backend);

  it('one limiter, a plan per identity: each call is decided by the limits it gives', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: PLANS.free, clock: clock.now });
    for (let i = 0; i < 3; i++) expect((await limiter.consume('ann')).allowed).toBe(true);
    expect(await limiter.consume('ann')).toMatchObject({ allowed: false, refusedBy: '3/1m' });
    for (let i = 0; i < 10; i++) {
      expect(await limiter.consume('bob', { limits: PLANS.pro })).toMatchObject({ allowed: true });
    }
    const refused = await limiter.consume('bob', { limits: PLANS.pro });
    expect(refused).toMatchObject({ allowed: false, refusedBy: '10/1m', limit: 10 });
    expect(refused.limits.map((state) => state.limit)).toEqual([10, 10]);
  });

  it('a plan change keeps what was counted: same algorithm and window, same counter', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: PLANS.free, clock: clock.now });
    for (let i = 0; i < 3; i++) await limiter.consume('ann');
    expect((await limiter.consume('ann')).allowed).toBe(false);
    // Upgraded: the 3 calls this minute still count, now against 10 (and 3 of the burst of 10).
    const upgraded = await limiter.consume('ann', { limits: PLANS.pro });
    expect(upgraded).toMatchObject({ allowed: true });
    expect(upgraded.limits.map((state) => [state.used, state.remaining])).toEqual([
      [4, 6],
      [4, 6],
    ]);
    // Downgraded again: 4 of 3, refused, with nothing counted.
    expect(await limiter.consume('ann')).toMatchObject({ allowed: false, refusedBy: '3/1m' });
    // A limit with another window counts afresh (its own key).
    const hourly = [fixedWindow({ limit: 2, window: '1h' })];
    expect(await limiter.consume('ann', { limits: hourly })).toMatchObject({ allowed: true, remaining: 1 });
  });

  it('refund and reset take the call limits too', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: PLANS.free, clock: clock.now });
    const hourly = [slidingWindow({ limit: 5, window: '1h' })];
    await limiter.consume('ann', { limits: hourly, cost: 3 });
    await limiter.refund('ann', { limits: hourly, cost: 2 });
    expect(await limiter.peek('ann', { limits: hourly })).toMatchObject({ remaining: 4 });
    // The limiter's own limits never saw it.
    expect(await limiter.peek('ann')).toMatchObject({ remaining: 3 });
    await limiter.reset('ann', { limits: hourly });
    expect(await limiter.peek('ann', { limits: hourly })).toMatchObject({ remaining: 5 });
  });

  it('call limits are validated as strictly as the constructor’s', async () => {
    const limiter = factory.make({ limits: PLANS.free });
    await expect(limiter.consume('u', { limits: [] })).rejects.toThrow(InvalidOptionError);
    await expect(
      limiter.consume('u', { limits: { ...fixedWindow({ limit: 1, window: '1s' }), windowMs: -5 } }),
    ).rejects.toThrow(/"windowMs" for RateLimiter\.consume\(\)/);
    await expect(
      limiter.consume('u', {
        limits: [fixedWindow({ limit: 1, window: '1s' }), fixedWindow({ limit: 2, window: '1s' })],
      }),
    ).rejects.toThrow(/share a counter/);
    // The cost is bounded by the call's limits, not the limiter's.
    await expect(limiter.consume('u', { limits: PLANS.pro, cost: 10 })).resolves.toMatchObject({ allowed: true });
    await expect(limiter.consume('u', { limits: PLANS.free, cost: 4 })).rejects.toThrow(/"cost"/);
  });
});

describe.each(['standalone', 'cluster'] as const)('call limits across instances on %s', (backend) => {
  const factory = limiterFactory(backend);

  it('instances built with different limits share one count when the calls give the same plan', async () => {
    const prefix = randomPrefix('dynamic');
    const clock = testClock();
    const a = factory.make({ prefix, limits: PLANS.free, clock: clock.now });
    const b = factory.make({ prefix, limits: PLANS.pro, clock: clock.now });
    for (let i = 0; i < 5; i++) await a.consume('ann', { limits: PLANS.pro });
    for (let i = 0; i < 5; i++) expect((await b.consume('ann')).allowed).toBe(true);
    expect(await a.consume('ann', { limits: PLANS.pro })).toMatchObject({ allowed: false, refusedBy: '10/1m' });
  });

  it('a plan is one command per call, like the limiter’s own limits, and refusals are remembered per plan', async () => {
    const prefix = randomPrefix('dynamic');
    const limiter = factory.make({ prefix, limits: PLANS.free, localDenyCache: { maxAge: '1m' } });
    await limiter.consume('warm', { limits: PLANS.pro });
    expect((await countCommands(() => limiter.consume('ann', { limits: PLANS.pro }))).count).toBe(1);
    for (let i = 0; i < 3; i++) await limiter.consume('bob');
    expect(await limiter.consume('bob')).toMatchObject({ allowed: false, reason: 'limit' });
    // Refused under free and remembered for it: no round trip...
    expect((await countCommands(() => limiter.consume('bob'))).count).toBe(0);
    // ...but the same identity on another plan is asked of Redis, and admitted.
    expect(await limiter.consume('bob', { limits: PLANS.pro })).toMatchObject({ allowed: true, source: 'redis' });
  });
});

describe('call limits when Redis is down', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it("the fallback decides with the call's limits: the memory counts and the policy results", async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const clock = testClock();
    const common = {
      redis,
      limits: PLANS.free,
      timeout: 150,
      circuitBreaker: false as const,
      localDenyCache: false as const,
      clock: clock.now,
    };
    const memory = new RateLimiter({ ...common, prefix: randomPrefix('dyn-down'), onRedisError: 'memory' });
    const deny = new RateLimiter({ ...common, prefix: randomPrefix('dyn-down'), onRedisError: 'deny' });
    expect((await memory.consume('u', { limits: PLANS.pro })).source).toBe('redis');
    await server.kill();
    const results = [];
    for (let i = 0; i < 11; i++) results.push(await memory.consume('v', { limits: PLANS.pro }));
    expect(results.every((result) => result.source === 'memory')).toBe(true);
    // The pro plan's 10 (the free plan would have refused the 4th).
    expect(results.map((result) => result.allowed)).toEqual([...Array(10).fill(true), false]);
    expect(results[10]?.limits.map((state) => state.limit)).toEqual([10, 10]);
    expect(await deny.consume('v', { limits: PLANS.pro })).toMatchObject({
      allowed: false,
      reason: 'redis-error',
      limit: 10,
    });
    expect(await deny.consume('v')).toMatchObject({ allowed: false, reason: 'redis-error', limit: 3 });
    redis.disconnect();
  }, 20_000);
});
