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
});
