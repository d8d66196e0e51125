import { afterAll, describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter, type RateLimitResult, slidingWindow } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { testClock } from './support.js';

/** Everything a caller can observe, minus who answered. */
function observable({ source: _source, ...rest }: RateLimitResult) {
  return rest;
}

/**
 * Several fixed and sliding windows without a block run the lean multi-limit script, whose batch
 * reply lays the identities' replies end to end (admitted and refused ones differ in length):
 * concurrent checks of many identities, some admitted and some refused in one batch, are decided
 * as the in-memory backend decides them, each identity in the order its checks were made.
 */
describe.each<Topology>(['standalone', 'cluster'])('several windows, batched, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('windows');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('mixed admitted and refused checks in one batch decide as the in-memory backend does', async () => {
    const clock = testClock();
    const common = {
      limits: [
        slidingWindow({ limit: 3, window: '1s' }),
        fixedWindow({ limit: 5, window: '1m' }),
        fixedWindow({ limit: 100, window: '1d' }),
      ],
      clock: clock.now,
      localDenyCache: false as const,
      timeout: '10s' as const,
      prefix,
    };
    const memory = new RateLimiter(common);
    const onRedis = new RateLimiter({ ...common, redis });
    // Identity k makes k % 7 + 1 checks, issued round-robin: one identity's checks share a batch
    // with the others', and from the fourth on they are refused (3 per second).
    const calls: string[] = [];
    for (let round = 0; round < 7; round++) {
      for (let k = 0; k < 24; k++) if (round <= k % 7) calls.push(`id-${k}`);
    }
    // Every node learns the script first (a peek counts nothing).
    await Promise.all(calls.map((id) => onRedis.peek(id)));
    const run = (limiter: RateLimiter) => Promise.all(calls.map((id) => limiter.consume(id)));
    const fromMemory = (await run(memory)).map(observable);
    let fromRedis: RateLimitResult[] = [];
    const log = await countCommands(async () => {
      fromRedis = await run(onRedis);
    });
    expect(fromRedis.map(observable)).toEqual(fromMemory);
    // Three of each identity's checks are admitted (fewer when it made fewer).
    const admitted = Array.from({ length: 24 }, (_, k) => Math.min(3, (k % 7) + 1)).reduce((a, b) => a + b, 0);
    expect(fromMemory.filter((result) => result.allowed)).toHaveLength(admitted);
    expect(new Set(fromMemory.map((result) => result.allowed))).toEqual(new Set([true, false]));
    // Standalone: batched, far fewer commands than checks; Cluster: one command per check.
    if (topology === 'standalone') expect(log.count).toBeLessThan(calls.length / 2);
    else expect(log.count).toBe(calls.length);
    expect(new Set(log.names)).toEqual(new Set(['evalsha']));
    // And again a second later, with the previous second's counts weighing on the sliding window.
    clock.advance(1_000);
    const again = (await run(memory)).map(observable);
    expect((await run(onRedis)).map(observable)).toEqual(again);
  });
});
