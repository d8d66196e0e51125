import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { nodeOf } from '../../src/client/cluster.js';
import type { CircuitBreakerOption } from '../../src/common/circuit-breaker.js';
import { createClient, fixedWindow, RateLimiter, type RateLimitResult } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { FaultProxy, RedisCluster } from '../harness/index.js';

const rejections = unhandledRejections();

interface Answer {
  id: string;
  startedAt: number;
  tookMs: number;
  result: RateLimitResult;
}

/** `callers` loops consuming for `idOf(n)` (a request handler each), until `stop()` says so. */
async function drive(callers: number, limiter: RateLimiter, idOf: (n: number) => string, stop: () => boolean) {
  const answers: Answer[] = [];
  let n = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (!stop()) {
        const startedAt = performance.now();
        const id = idOf(n++);
        const result = await limiter.consume(id);
        answers.push({ id, startedAt, tookMs: performance.now() - startedAt, result });
        await new Promise((resolve) => setImmediate(resolve));
      }
    }),
  );
  return answers;
}

describe('circuit breakers tell a dead Redis from a slow one', () => {
  const closing: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const close of closing.reverse()) await close();
  });

  it.each<[string, CircuitBreakerOption | undefined, boolean]>([
    ['the defaults (3 failures over 1 s)', undefined, true],
    ['a breaker that opens on one failure', { failureThreshold: 1, failureWindow: 0 }, false],
  ])('a 250 ms stall with %s', async (_, circuitBreaker, staysOnRedis) => {
    const proxy = await FaultProxy.start(inject('redisUrl'));
    const redis = createClient({ url: proxy.url, onError: quiet });
    closing.push(
      () => redis.disconnect(),
      () => proxy.close(),
    );
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('stall'),
      limits: fixedWindow({ limit: 1_000_000, window: '1h' }),
      // Shorter than the stall, so calls caught in it do time out.
      timeout: 100,
      ...(circuitBreaker && { circuitBreaker }),
    });
    expect((await limiter.consume('warm')).source).toBe('redis');

    const began = performance.now();
    let stallStart = 0;
    let stallEnd = 0;
    const running = drive(
      8,
      limiter,
      (n) => `u${n % 50}`,
      () => performance.now() - began > 2_000,
    );
    await sleep(400);
    stallStart = performance.now();
    proxy.set({ kind: 'pause' });
    await sleep(250);
    proxy.pass();
    stallEnd = performance.now();
    const answers = await running;

    const fallbacks = answers.filter((answer) => answer.result.source !== 'redis');
    expect(fallbacks.length).toBeGreaterThan(0);
    // Calls that started once the stall was over (and the link had a moment to drain).
    const after = answers.filter((answer) => answer.startedAt > stallEnd + 100);
    expect(after.length).toBeGreaterThan(50);
    const lateFallbacks = after.filter((answer) => answer.result.source !== 'redis');
    if (staysOnRedis) {
      // Only calls caught in the stall fell back: none that started 100 ms after it ended.
      expect(lateFallbacks).toEqual([]);
      expect(Math.min(...fallbacks.map((answer) => answer.startedAt))).toBeGreaterThanOrEqual(stallStart - 300);
    } else {
      // The contrast that shows the test can fail: a breaker that trusts one failure stays open
      // for its 1 s cooldown, well past the end of the stall.
      expect(lateFallbacks.length).toBeGreaterThan(0);
    }
    expect(rejections.list).toEqual([]);
  });

  it('a dead Cluster master costs only its own keys: healthy slots are still answered by Redis', async () => {
    const cluster = await RedisCluster.start({ args: ['--cluster-require-full-coverage', 'no'] });
    closing.push(() => cluster.stop());
    const redis = createClient({ nodes: cluster.nodes, onError: quiet }) as Cluster;
    closing.push(() => redis.disconnect());
    const prefix = randomPrefix('dead-master');
    const limiter = new RateLimiter({
      redis,
      prefix,
      limits: fixedWindow({ limit: 1_000_000, window: '1h' }),
      timeout: 200,
    });
    await redis.ping();
    const ids = Array.from({ length: 300 }, (_, i) => `user-${i}`);
    for (const id of ids) expect((await limiter.consume(id)).source).toBe('redis');
    // Which identities live on the master about to die (by the slot map before it dies).
    const victim = cluster.servers[0];
    const victimAddress = `127.0.0.1:${victim?.port}`;
    const onVictim = new Set(ids.filter((id) => nodeOf(redis, `${prefix}:rl:{${id}}`) === victimAddress));
    expect(onVictim.size).toBeGreaterThan(30);
    expect(onVictim.size).toBeLessThan(200);

    await victim?.kill();
    const began = performance.now();
    const answers = await drive(
      16,
      limiter,
      (n) => ids[n % ids.length] as string,
      () => performance.now() - began > 3_000,
    );
    const healthy = answers.filter((answer) => !onVictim.has(answer.id));
    const dead = answers.filter((answer) => onVictim.has(answer.id));
    const answeredByRedis = healthy.filter((answer) => answer.result.source === 'redis').length;
    expect(healthy.length).toBeGreaterThan(200);
    expect(answeredByRedis / healthy.length).toBeGreaterThanOrEqual(0.99);
    // The dead master's keys are answered by the fallback, and once its own breaker opened (its
    // failures went on for failureWindow, 1 s), at once instead of after the timeout. One breaker
    // for the whole Cluster never opens here (healthy nodes' successes keep closing it), so
    // every call for a dead key would wait out the timeout.
    expect(dead.every((answer) => answer.result.source === 'memory')).toBe(true);
    const settled = dead.filter((answer) => answer.startedAt > began + 1_500).map((answer) => answer.tookMs);
    expect(settled.length).toBeGreaterThan(50);
    expect(median(settled)).toBeLessThan(20);
    expect(rejections.list).toEqual([]);
  }, 60_000);
});

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
