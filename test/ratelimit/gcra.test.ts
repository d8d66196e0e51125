import { describe, expect, it } from 'vitest';
import {
  fixedWindow,
  gcra,
  InvalidOptionError,
  RateLimiter,
  rateLimitHeaders,
  slidingWindow,
} from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { randomPrefix } from '../harness/context.js';
import { CONTRACT_BACKENDS, limiterFactory, testClock } from './support.js';

describe.each(CONTRACT_BACKENDS)('GCRA contract on %s', (backend) => {
  const factory = limiterFactory(backend);

  it('admits the burst at once, then one unit per window / limit, and says exactly when', async () => {
    const clock = testClock();
    // 2 per second (one unit every 500 ms), 4 at once.
    const limiter = factory.make({ limits: gcra({ limit: 2, window: '1s', burst: 4 }), clock: clock.now });
    const burst = [];
    for (let i = 0; i < 4; i++) burst.push(await limiter.consume('u'));
    expect(burst.map((r) => [r.allowed, r.remaining, r.resetAt - clock.start])).toEqual([
      [true, 3, 500],
      [true, 2, 1_000],
      [true, 1, 1_500],
      [true, 0, 2_000],
    ]);
    // In results its limit is the burst and its window the time an empty bucket takes to refill.
    expect(burst[0]).toMatchObject({ limit: 4, windowMs: 2_000 });
    expect(burst[0]?.limits[0]).toMatchObject({ name: '2/1s:burst4', algorithm: 'gcra', limit: 4, used: 1 });

    const refused = await limiter.consume('u');
    expect(refused).toMatchObject({ allowed: false, reason: 'limit', refusedBy: '2/1s:burst4', retryAfter: 500 });
    expect(refused.limits[0]).toMatchObject({ used: 4, remaining: 0 });
    clock.advance(499);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 1 });
    clock.advance(1);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0 });
    // The steady rate: two more a second later, not a fresh burst.
    clock.advance(1_000);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0 });
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 500 });
    // Idle for a full refill: the whole burst again.
    clock.advance(2_000);
    expect(await limiter.peek('u')).toMatchObject({ allowed: true, remaining: 4, resetAt: clock.now() });
  });

  it('is exact when window / limit is not a whole number of ms', async () => {
    const clock = testClock();
    // One unit every 333⅓ ms; the bucket emptied at once, then kept empty by a caller that
    // retries exactly when told to.
    const limiter = factory.make({ limits: gcra({ limit: 3, window: 1_000, burst: 2 }), clock: clock.now });
    expect((await limiter.consume('u', { cost: 2 })).allowed).toBe(true);
    const admittedAt: number[] = [];
    for (let k = 1; k <= 30; k++) {
      const refused = await limiter.consume('u');
      expect(refused.allowed).toBe(false);
      // A millisecond earlier than retryAfter is still refused; retryAfter itself admits.
      clock.advance(refused.retryAfter - 1);
      expect((await limiter.peek('u')).allowed).toBe(false);
      clock.advance(1);
      expect((await limiter.consume('u')).allowed).toBe(true);
      admittedAt.push(clock.now() - clock.start);
    }
    // The k-th unit at exactly ceil(k × 1000 / 3) ms: no drift from rounding the interval.
    expect(admittedAt).toEqual(Array.from({ length: 30 }, (_, k) => Math.ceil(((k + 1) * 1_000) / 3)));
  });

  it('counts cost, refunds it (never past a full bucket), peeks without counting, and resets', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: gcra({ limit: 10, window: '1s', burst: 5 }), clock: clock.now });
    expect(await limiter.consume('u', { cost: 3 })).toMatchObject({ allowed: true, remaining: 2 });
    expect(await limiter.peek('u', { cost: 2 })).toMatchObject({ allowed: true, remaining: 2 });
    expect(await limiter.consume('u', { cost: 3 })).toMatchObject({ allowed: false, remaining: 2, retryAfter: 100 });
    await limiter.refund('u', { cost: 2 });
    expect(await limiter.peek('u')).toMatchObject({ remaining: 4 });
    await limiter.refund('u', { cost: 5 });
    expect(await limiter.peek('u')).toMatchObject({ remaining: 5, resetAt: clock.now() });
    await limiter.refund('u');
    expect(await limiter.consume('u', { cost: 5 })).toMatchObject({ allowed: true, remaining: 0 });
    await limiter.reset('u');
    expect(await limiter.consume('u', { cost: 5 })).toMatchObject({ allowed: true, remaining: 0 });
    // A cost above the burst could never be admitted: an error, not a refusal.
    await expect(limiter.consume('u', { cost: 6 })).rejects.toThrow(InvalidOptionError);
    await expect(limiter.hit('u')).rejects.toThrow(/nor a GCRA bucket past its burst/);
  });

  it('is checked atomically with other limits: a refusal by either counts in neither', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [gcra({ limit: 10, window: '1s', burst: 5, name: 'bucket' }), fixedWindow({ limit: 3, window: '1m' })],
      clock: clock.now,
    });
    for (let i = 0; i < 3; i++) expect((await limiter.consume('u')).allowed).toBe(true);
    const byWindow = await limiter.consume('u');
    expect(byWindow).toMatchObject({ allowed: false, refusedBy: '3/1m' });
    expect(byWindow.limits[0]).toMatchObject({ name: 'bucket', allowed: true, used: 3, remaining: 2 });

    const other = factory.make({
      limits: [gcra({ limit: 1, window: '1s', burst: 2, name: 'bucket' }), slidingWindow({ limit: 10, window: '1m' })],
      clock: clock.now,
    });
    expect((await other.consume('v', { cost: 2 })).allowed).toBe(true);
    const byBucket = await other.consume('v');
    expect(byBucket).toMatchObject({ allowed: false, refusedBy: 'bucket', retryAfter: 1_000 });
    expect(byBucket.limits[1]).toMatchObject({ allowed: true, used: 2 });
    clock.advance(1_000);
    expect(await other.consume('v')).toMatchObject({ allowed: true });
    expect((await other.peek('v')).limits[1]).toMatchObject({ used: 3 });
  });

  it('blocks after a refusal without counting, and at least until the bucket has room', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: gcra({ limit: 1, window: '1s', burst: 2 }),
      blockFor: 300,
      clock: clock.now,
    });
    await limiter.consume('u', { cost: 2 });
    // The bucket has room again in 1000 ms, later than blockFor: the block lasts until then.
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 1_000 });
    clock.advance(600);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'blocked', retryAfter: 400 });
    clock.advance(400);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0 });

    const exact = factory.make({
      limits: gcra({ limit: 1, window: '1s', burst: 2 }),
      blockFor: 300,
      blockMode: 'exact',
      clock: clock.now,
    });
    await exact.consume('w', { cost: 2 });
    expect(await exact.consume('w')).toMatchObject({ allowed: false, retryAfter: 300 });
    clock.advance(300);
    // An exact block ends with fresh counts: the whole burst.
    expect(await exact.consume('w', { cost: 2 })).toMatchObject({ allowed: true, remaining: 0 });
  });

  if (backend !== 'memory') {
    it('on Redis time, keeps one key per identity that expires when the bucket is full again', async () => {
      const redis = factory.redis;
      if (!redis) throw new Error('no Redis');
      const prefix = randomPrefix('gcra');
      const limiter = factory.make({ prefix, limits: gcra({ limit: 4, window: '1s', burst: 8 }) });
      const result = await limiter.consume('u', { cost: 3 });
      expect(result).toMatchObject({ allowed: true, remaining: 5, source: 'redis' });
      expect(Math.abs(result.decidedAt - Date.now())).toBeLessThan(5_000);
      expect(result.resetAt - result.decidedAt).toBe(750);
      const key = `${prefix}:rl:{u}:g1000`;
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(750);
      // The time of the change, and the level then: 3 units × 1000 ms, in 1/4 ms.
      expect(await redis.hgetall(key)).toEqual({ t: String(result.decidedAt), d: '3000' });
    });

    it('treats a malformed state in Redis as an empty bucket, never as a crash', async () => {
      const redis = factory.redis;
      if (!redis) throw new Error('no Redis');
      const prefix = randomPrefix('gcra');
      const clock = testClock();
      const limiter = factory.make({ prefix, limits: gcra({ limit: 1, window: '1s', burst: 2 }), clock: clock.now });
      const key = `${prefix}:rl:{u}:g1000`;
      for (const [t, d] of [
        ['soon', '??'],
        [String(clock.now()), 'inf'],
        [String(clock.now()), 'nan'],
        [String(clock.now()), '-5000'],
        [String(clock.now()), String(2 ** 60)],
        ['nan', '1000'],
      ]) {
        await redis.hset(key, 't', t as string, 'd', d as string);
        expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 1, source: 'redis' });
        await limiter.refund('u');
        await limiter.reset('u');
      }
    });
  }
});

describe('GCRA on the wire and in headers', () => {
  const factory = limiterFactory('standalone');

  it('is one command per check, alone or beside other limits', async () => {
    const alone = factory.make({ limits: gcra({ limit: 10, window: '1s', burst: 20 }) });
    const beside = factory.make({
      limits: [gcra({ limit: 10, window: '1s', burst: 20 }), fixedWindow({ limit: 100, window: '1m' })],
      blockFor: '1s',
    });
    for (const limiter of [alone, beside]) {
      await limiter.consume('warm');
      await limiter.refund('warm');
      expect(await countCommands(() => limiter.consume('u'))).toEqual({ count: 1, names: ['evalsha'] });
      expect((await countCommands(() => limiter.refund('u'))).count).toBe(1);
    }
  });

  it('headers state the burst and the refill time, and a reset no earlier than Retry-After', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: gcra({ limit: 10, window: '1s', burst: 20 }), clock: clock.now });
    await limiter.consume('u', { cost: 20 });
    const refused = await limiter.consume('u', { cost: 5 });
    expect(refused).toMatchObject({ allowed: false, retryAfter: 500, limit: 20, windowMs: 2_000 });
    expect(rateLimitHeaders(refused, 'draft-7')).toEqual({
      'RateLimit-Policy': '20;w=2',
      RateLimit: 'limit=20, remaining=0, reset=2',
      'Retry-After': '1',
    });
  });
});

describe('gcra() options', () => {
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['a burst of 0', { limit: 1, window: '1s', burst: 0 }, /"burst" for gcra\(\)/],
    ['a fractional burst', { limit: 1, window: '1s', burst: 1.5 }, /"burst" for gcra\(\)/],
    ['a burst × window past 2^50', { limit: 1, window: '1d', burst: 2 ** 30 }, /at most 2\^50/],
    ['an unknown option', { limit: 1, window: '1s', bursts: 2 }, /"bursts"/],
  ])('refuses %s with a named error', (_, options, message) => {
    expect(() => gcra(options as never)).toThrow(InvalidOptionError);
    expect(() => gcra(options as never)).toThrow(message);
  });

  it('defaults the burst to the limit, and a hand-made rule is checked as strictly', () => {
    expect(gcra({ limit: 5, window: '1s' })).toMatchObject({ algorithm: 'gcra', burst: 5, name: '5/1s' });
    expect(
      () => new RateLimiter({ limits: { ...slidingWindow({ limit: 5, window: '1s' }), burst: 3 } as never }),
    ).toThrow(/only gcra\(\) limits have one/);
    expect(() => new RateLimiter({ limits: { ...gcra({ limit: 5, window: '1s' }), burst: -1 } as never })).toThrow(
      /limits\.burst/,
    );
  });
});
