import { mock } from 'node:test';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { fixedWindow, RateLimiter } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * Users' test suites (and the peers' own, run with redscale's stores) often fake timers: Jest's and
 * Vitest's `useFakeTimers`, node:test's `mock.timers`, sinon. Concurrent checks are batched on
 * `setImmediate`, which then never runs; they must still be sent and answered, as the peers'
 * Redis stores are.
 */
describe.each<Topology>(['standalone', 'cluster'])('a limiter under fake timers, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('fake-timers');
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
    mock.timers.reset();
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  const limiter = () =>
    new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 5, window: '1h', anchor: 'first-hit' }) });

  it("answers concurrent checks with Vitest's fake timers (setImmediate faked)", async () => {
    const rl = limiter();
    await rl.peek('warm');
    vi.useFakeTimers({ toFake: ['setImmediate', 'setTimeout', 'setInterval', 'Date'] });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => rl.consume(`vi:${i % 4}`)));
    expect(results.filter((result) => result.allowed)).toHaveLength(20);
    expect(results.every((result) => result.source === 'redis')).toBe(true);
  });

  it("answers concurrent checks with node:test's mock.timers", async () => {
    const rl = limiter();
    await rl.peek('warm');
    mock.timers.enable({ apis: ['setImmediate', 'setTimeout', 'setInterval'] });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => rl.consume(`node:${i % 4}`)));
    expect(results.filter((result) => result.allowed)).toHaveLength(20);
  });

  // Until a node's first reply, a call's deadline is reckoned on the host's wall clock: a clock
  // behind the server's (frozen at 0 by fake timers, or skewed) made every fresh limiter's first
  // call run "late" and fail (a 500 or a 503 for the first request of each app in a test suite).
  it.each([
    ['frozen at 0 by fake timers', () => vi.useFakeTimers({ toFake: ['Date'], now: 0 })],
    [
      'a minute behind the server',
      () => vi.spyOn(Date, 'now').mockImplementation(() => performance.timeOrigin + performance.now() - 60_000),
    ],
  ])('counts the first call of a fresh limiter with the host clock %s', async (_name, skew) => {
    skew();
    const errors: unknown[] = [];
    const rl = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 2, window: '1h', anchor: 'first-hit' }),
      onRedisError: 'deny',
      onError: (error) => errors.push(error),
    });
    const id = `skew:${Math.random()}`;
    const results = [await rl.consume(id), await rl.consume(id), await rl.consume(id)];
    expect(results.map((result) => [result.allowed, result.source])).toEqual([
      [true, 'redis'],
      [true, 'redis'],
      [false, 'redis'],
    ]);
    expect(errors).toEqual([]);
  });
});
