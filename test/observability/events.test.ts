import { channel } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Cache,
  CHANNELS,
  createClient,
  type EventMessage,
  fixedWindow,
  InvalidOptionError,
  Lock,
  type LockEvents,
  type Logger,
  RateLimiter,
  type RateLimiterEvents,
  Semaphore,
} from '../../src/index.js';
import { connect, quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer, waitUntil } from '../harness/index.js';

const rejections = unhandledRejections();

/** A logger that keeps what it was given, as pino would receive it. */
function recordingLogger() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const at =
    (level: string) =>
    (fields: object, message: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, message });
    };
  const logger: Logger = { warn: at('warn'), error: at('error'), debug: at('debug') };
  return { logger, lines };
}

describe('RateLimiter stats() and events', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('counts every answer once, with the same numbers as the decision events and the channel', async () => {
    const redis = connect();
    const prefix = randomPrefix('rl-stats');
    const limiter = new RateLimiter({ redis, prefix, limits: fixedWindow({ limit: 2, window: '1m' }) });
    const decisions: RateLimiterEvents['decision'][0][] = [];
    limiter.on('decision', (event) => decisions.push(event));
    const published: EventMessage[] = [];
    const listener = (message: unknown) => published.push(message as EventMessage);
    channel(CHANNELS.limiterEvents).subscribe(listener);
    try {
      for (let i = 0; i < 4; i++) await limiter.consume('u');
      await limiter.peek('u');
      expect(limiter.stats()).toEqual({
        allowed: 2,
        limited: 2, // the 3rd consume, and the peek (peek skips the local deny cache)
        blocked: 0,
        localBlocked: 1,
        fallbacks: 0,
        redisErrors: 0,
        breakerSkips: 0,
        breakerOpens: 0,
      });
      expect(decisions.map((event) => [event.operation, event.result.reason])).toEqual([
        ['consume', 'allowed'],
        ['consume', 'allowed'],
        ['consume', 'limit'],
        ['consume', 'local-block'],
        ['peek', 'limit'],
      ]);
      const own = published.filter((message) => message.prefix === prefix);
      expect(own.map((message) => message.event)).toEqual(Array(5).fill('decision'));
      expect(own.map((message) => message.payload)).toEqual(decisions);
    } finally {
      channel(CHANNELS.limiterEvents).unsubscribe(listener);
      redis.disconnect();
    }
  });

  it('logs absorbed Redis failures and the breaker opening to the logger, and counts them as the events do', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const { logger, lines } = recordingLogger();
    const errors: unknown[] = [];
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('rl-log'),
      limits: fixedWindow({ limit: 10, window: '1m' }),
      timeout: 150,
      circuitBreaker: { failureThreshold: 1, failureWindow: 0, cooldown: '1m' },
      logger,
      onError: (error) => errors.push(error),
    });
    const events: string[] = [];
    limiter.on('redis-error', () => events.push('redis-error'));
    limiter.on('breaker', ({ state }) => events.push(`breaker:${state}`));
    try {
      await limiter.consume('u');
      await server.kill();
      expect((await limiter.consume('u')).source).toBe('memory');
      expect((await limiter.consume('u')).source).toBe('memory'); // the breaker is open: Redis skipped
      const stats = limiter.stats();
      expect(stats).toMatchObject({ allowed: 3, fallbacks: 2, redisErrors: 1, breakerSkips: 1, breakerOpens: 1 });
      expect(events.sort()).toEqual(['breaker:open', 'redis-error']);
      expect(errors).toHaveLength(1);
      const warnings = lines.filter((line) => line.level === 'warn');
      expect(warnings).toHaveLength(2);
      expect(warnings[0]?.fields).toMatchObject({
        err: errors[0],
        code: expect.stringMatching(/^ERR_(REDIS|TIMEOUT)$/),
      });
      expect(warnings[1]?.message).toMatch(/circuit open/);
      expect(limiter.circuitBreakers()).toEqual({ standalone: 'open' });
    } finally {
      redis.disconnect();
    }
    expect(rejections.list).toEqual([]);
  });

  it('refuses a logger without warn() and error(), naming the option', () => {
    expect(() => new RateLimiter({ limits: fixedWindow({ limit: 1, window: '1s' }), logger: {} as Logger })).toThrow(
      InvalidOptionError,
    );
    expect(() => new Lock({ redis: connect(), logger: { warn() {} } as unknown as Logger })).toThrow(/logger/);
  });

  it('a throwing logger never breaks the limiter', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const boom = () => {
      throw new Error('logger down');
    };
    const limiter = new RateLimiter({
      redis,
      prefix: randomPrefix('rl-boom'),
      limits: fixedWindow({ limit: 10, window: '1m' }),
      timeout: 150,
      logger: { warn: boom, error: boom },
    });
    try {
      await server.kill();
      expect((await limiter.consume('u')).source).toBe('memory');
    } finally {
      redis.disconnect();
    }
  });
});

describe('Lock stats() and events', () => {
  it('counts acquisitions, contention, timeouts, extensions, releases and losses as its events report them', async () => {
    const redis = connect();
    const prefix = randomPrefix('lock-stats');
    const { logger, lines } = recordingLogger();
    const lock = new Lock({ redis, prefix, wait: 0, logger });
    const events: Array<[string, unknown]> = [];
    for (const name of ['acquire', 'contention', 'timeout', 'extend', 'release', 'lost'] as const) {
      lock.on(name, (payload: LockEvents[typeof name][0]) => events.push([name, payload]));
    }
    try {
      const held = await lock.acquire('job:1');
      expect(await lock.tryAcquire('job:1')).toBeNull();
      await held.extend('5s');
      expect(await held.release()).toBe(true);
      // A lease that runs out while held is lost (no auto-extension).
      const short = await lock.acquire('job:2', { ttl: 50 });
      const lost = new Promise((resolve) => short.signal.addEventListener('abort', resolve));
      await lost;
      await sleep(30); // past the key's own expiry in Redis (the local validity ends a little earlier)
      expect(await short.release()).toBe(false);

      expect(lock.stats()).toEqual({
        acquired: 2,
        contended: 1,
        timeouts: 1,
        failures: 0,
        extended: 1,
        released: 1,
        lost: 1,
        redisErrors: 0,
      });
      expect(events.map(([name]) => name)).toEqual([
        'acquire',
        'contention',
        'timeout',
        'extend',
        'release',
        'acquire',
        'lost',
        'release',
      ]);
      expect(events[0]?.[1]).toMatchObject({ resources: ['job:1'], attempts: 1, fence: expect.any(Number) });
      expect(events[4]?.[1]).toEqual({ resources: ['job:1'], held: true });
      expect(events[7]?.[1]).toEqual({ resources: ['job:2'], held: false });
      expect(lines).toEqual([
        expect.objectContaining({ level: 'error', fields: expect.objectContaining({ code: 'ERR_LOCK_LOST' }) }),
      ]);
    } finally {
      redis.disconnect();
    }
  });

  it('an acquisition that waits for the holder counts one contention, and reports its wait', async () => {
    const redis = connect();
    const lock = new Lock({ redis, prefix: randomPrefix('lock-wait'), wait: '5s', retryDelay: { min: 5, max: 20 } });
    const acquired: LockEvents['acquire'][0][] = [];
    lock.on('acquire', (event) => acquired.push(event));
    try {
      const first = await lock.acquire('r');
      const second = lock.acquire('r');
      await sleep(100);
      await first.release();
      await (await second).release();
      expect(lock.stats()).toMatchObject({ acquired: 2, contended: 1, timeouts: 0 });
      expect(acquired[1]?.attempts).toBeGreaterThan(1);
      expect(acquired[1]?.waitedMs).toBeGreaterThanOrEqual(90);
    } finally {
      redis.disconnect();
    }
  });
});

describe('Cache and Semaphore logger', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('sends the failures they absorb to the logger', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    const { logger, lines } = recordingLogger();
    const cache = new Cache({ redis, prefix: randomPrefix('cache-log'), timeout: 150, bus: false, logger });
    const semaphore = new Semaphore({ redis, prefix: randomPrefix('sem-log'), limit: 1, logger });
    try {
      const permit = await semaphore.acquire('s', { ttl: 300, autoExtend: true });
      await server.kill();
      expect(await cache.get('k')).toBeUndefined();
      expect(cache.stats().redisErrors).toBe(1);
      // The auto-extension fails and is absorbed (then the permit is lost).
      await waitUntil('a failed extension to be logged', async () =>
        lines.some((line) => line.level === 'warn' && line.message.includes('extend')),
      );
      expect(lines.filter((line) => line.level === 'warn').length).toBeGreaterThanOrEqual(2);
      void permit.release().catch(() => {});
    } finally {
      await cache.close();
      redis.disconnect();
    }
  });
});
