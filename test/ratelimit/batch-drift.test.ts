import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixedWindow, RateLimiter, type RedisLike } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { type Proxied, proxied } from '../lock/proxied.js';

/**
 * The batcher's in-flight accounting (commands and checks, the checks retiring a turn
 * after their reply): after storms of checks that time out in flight (replies stalled, then
 * dropped, the link reset and the commands resent late), queued checks that time out before they
 * go, and a Redis that refuses everything (a wrong script reply), the batcher must be idle again:
 * a lone check is one command sent at once, and concurrent checks flow under fake `setImmediate`
 * (where a queue only goes at a threshold of 1 or at the last reply, so a count left above zero
 * would hold them until their deadline).
 */
describe.each<Topology>(['standalone', 'cluster'])('the batcher is idle after failures, on %s', (topology) => {
  let link: Proxied;
  let redis: RedisLike;
  const prefix = randomPrefix('r3-drift');
  beforeAll(async () => {
    link = await proxied(topology);
    redis = link.redis;
  });
  afterEach(() => {
    vi.useRealTimers();
    link.set({ kind: 'pass' });
  });
  afterAll(async () => {
    await deletePrefix(link.direct, prefix);
    await link.close();
  });

  async function flows(limiter: RateLimiter, ids: string[]): Promise<void> {
    // A lone check: one command.
    expect((await countCommands(() => limiter.consume('lone'))).count).toBe(1);
    vi.useFakeTimers({ toFake: ['setImmediate'] });
    try {
      for (let round = 0; round < 3; round++) {
        const results = await Promise.all(ids.map((id) => limiter.consume(id)));
        expect(results.map((result) => result.source)).toEqual(ids.map(() => 'redis'));
      }
    } finally {
      vi.useRealTimers();
    }
  }

  it('after checks time out in flight (stalled, then dropped replies and a reset link) and in the queue', async () => {
    const limiter = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 1e6, window: '1h', anchor: 'first-hit' }),
      timeout: 100,
      onRedisError: 'allow',
      localDenyCache: false,
      // Every call goes to Redis (an open breaker would answer without it).
      circuitBreaker: false,
    });
    const ids = Array.from({ length: 40 }, (_, i) => `id${i}`);
    await Promise.all(ids.map((id) => limiter.peek(id)));
    for (const mode of [{ kind: 'pause' }, { kind: 'drop-replies' }, { kind: 'delay', ms: 150 }] as const) {
      link.set(mode);
      // Waves: the first goes, later ones queue behind it and time out there or in flight.
      const waves: Promise<unknown>[] = [];
      for (let wave = 0; wave < 4; wave++) {
        waves.push(...ids.map((id) => limiter.consume(id)));
        await sleep(20);
      }
      const results = (await Promise.all(waves)) as Array<{ source: string }>;
      expect(results.some((result) => result.source !== 'redis')).toBe(true);
      link.set({ kind: 'pass' });
      if (mode.kind !== 'delay') link.resetAll();
      await sleep(400);
    }
    await flows(limiter, ids);
  });
});
