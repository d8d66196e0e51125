import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { fixedWindow, RateLimiter, slidingWindow } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * The batcher's retirement on `process.nextTick`: with every timer Vitest can fake
 * (queueMicrotask included; nextTick cannot be faked in the forks pool), concurrent and looping checks of mixed operations must
 * still be sent, answered by Redis, and admit exactly the limit.
 */
describe.each<Topology>(['standalone', 'cluster'])('limiter checks with all timers faked, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('r3-nexttick');
  afterEach(() => {
    vi.useRealTimers();
  });
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('mixed consume, cost-2 consume and peek from 48 loops admit exactly the limit, none from a fallback', async () => {
    const rl = new RateLimiter({
      redis,
      prefix,
      limits: [fixedWindow({ limit: 301, window: '1h' }), slidingWindow({ limit: 1_000, window: '1h' })],
    });
    await Promise.all(Array.from({ length: 8 }, (_, i) => rl.peek(`warm${i}`)));
    vi.useFakeTimers({
      toFake: ['setImmediate', 'setTimeout', 'setInterval', 'Date', 'queueMicrotask'],
    });
    let admittedCost = 0;
    const sources = new Set<string>();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 48 }, async (_, w) => {
        for (let n = 0; n < 30 && performance.now() - started < 5_000; n++) {
          const kind = (w + n) % 3;
          const id = `shared:${n % 2}`;
          const result =
            kind === 0 ? await rl.consume(id) : kind === 1 ? await rl.consume(id, { cost: 2 }) : await rl.peek(id);
          sources.add(result.source);
          if (kind !== 2 && result.allowed) admittedCost += kind === 0 ? 1 : 2;
        }
      }),
    );
    // 'local': the deny cache answering a key Redis refused until its reset.
    expect([...sources].filter((source) => source !== 'redis' && source !== 'local')).toEqual([]);
    // 960 consuming calls (about 1440 units) over two identities of 301 each: both full, never over.
    expect(admittedCost).toBeLessThanOrEqual(602);
    expect(admittedCost).toBeGreaterThanOrEqual(600);
  });
});
