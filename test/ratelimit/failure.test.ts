import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createClient,
  fixedWindow,
  RateLimiter,
  type RateLimitResult,
  type RedisErrorPolicy,
  type RedscaleError,
} from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';

const rejections = unhandledRejections();

const TIMEOUT = 150;

describe('RateLimiter when Redis is killed under load', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it.each<[RedisErrorPolicy, (result: RateLimitResult) => void]>([
    ['allow', (result) => expect(result).toMatchObject({ allowed: true, reason: 'redis-error', source: 'policy' })],
    ['deny', (result) => expect(result).toMatchObject({ allowed: false, reason: 'redis-error', source: 'policy' })],
    ['memory', (result) => expect(result.source).toBe('memory')],
  ])('onRedisError %s: every call settles within the timeout, then Redis takes over again', async (policy, check) => {
    const server = await RedisServer.start();
    servers.push(server);
    // The user's own client with ioredis-like patience: the limiter's timeout must still hold.
    const redis = createClient({ url: server.url, commandTimeout: 10_000, maxRetriesPerRequest: 20, onError: quiet });
    const errors: RedscaleError[] = [];
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('kill'),
      limits: fixedWindow({ limit: 1_000_000, window: '1m' }),
      onRedisError: policy,
      timeout: TIMEOUT,
      circuitBreaker: { cooldown: 500, failureThreshold: 1, failureWindow: 0 },
      onError: (error) => errors.push(error),
    });
    expect((await limiter.consume('u')).source).toBe('redis');

    // 20 callers in a loop; Redis dies in the middle.
    const durations: number[] = [];
    const fallbacks: RateLimitResult[] = [];
    let stop = false;
    const callers = Array.from({ length: 20 }, async () => {
      while (!stop) {
        const started = performance.now();
        const result = await limiter.consume('u');
        durations.push(performance.now() - started);
        if (result.source !== 'redis') fallbacks.push(result);
        // Like request handlers, give the event loop a turn between calls.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.kill();
    await new Promise((resolve) => setTimeout(resolve, 600));
    stop = true;
    await Promise.all(callers);

    expect(fallbacks.length).toBeGreaterThan(0);
    for (const result of fallbacks) {
      check(result);
      expect(['ERR_TIMEOUT', 'ERR_REDIS']).toContain(result.error?.code);
    }
    // Generous slack for a loaded test machine; the point is "not ioredis' 10 s".
    expect(durations.reduce((max, duration) => Math.max(max, duration), 0)).toBeLessThan(TIMEOUT * 3);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((error) => error.code === 'ERR_TIMEOUT' || error.code === 'ERR_REDIS')).toBe(true);

    // Right after a failure the circuit is open: the next call does not even try Redis.
    await waitUntil('a failed probe', async () => {
      const before = errors.length;
      await limiter.consume('u');
      return errors.length > before;
    });
    const skipped = await countCommands(() => limiter.consume('u'));
    expect(skipped.count).toBe(0);

    await server.restart();
    await waitUntil('checks to go back to Redis', async () => (await limiter.consume('u')).source === 'redis');
    redis.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rejections.list).toEqual([]);
  });

  it('memory fallback enforces the limits in-process, and is forgotten once Redis is back', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('mem'),
      limits: fixedWindow({ limit: 3, window: '1m' }),
      timeout: TIMEOUT,
      circuitBreaker: false,
      localDenyCache: false,
    });
    await limiter.consume('u');
    await server.kill();
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await limiter.consume('u'));
    expect(answers.map((result) => [result.source, result.allowed])).toEqual([
      ['memory', true],
      ['memory', true],
      ['memory', true],
      ['memory', false],
      ['memory', false],
    ]);
    await server.restart();
    await waitUntil('Redis to answer', async () => (await limiter.peek('u')).source === 'redis');
    // Redis remembers its own count (1, before the outage; a restart without persistence empties it).
    expect((await limiter.consume('u')).source).toBe('redis');
    // The next outage starts from a clean in-memory slate, not the stale fallback count.
    await server.kill();
    expect(await limiter.consume('u')).toMatchObject({ source: 'memory', allowed: true, remaining: 2 });
    redis.disconnect();
  });

  it('refund and reset reject with a typed error when Redis is down, never hang', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('down'),
      limits: fixedWindow({ limit: 3, window: '1m' }),
      timeout: TIMEOUT,
    });
    await limiter.consume('u');
    await server.kill();
    await expect(limiter.refund('u')).rejects.toMatchObject({ code: expect.stringMatching(/ERR_TIMEOUT|ERR_REDIS/) });
    await expect(limiter.reset('u')).rejects.toMatchObject({ code: expect.stringMatching(/ERR_TIMEOUT|ERR_REDIS/) });
    redis.disconnect();
  });
});
