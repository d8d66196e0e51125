import { describe, expect, it } from 'vitest';
import { fixedWindow, InvalidOptionError, slidingLog, slidingWindow } from '../../src/index.js';
import { connect, countKeys } from '../harness/context.js';
import { CONTRACT_BACKENDS, limiterFactory, testClock } from './support.js';

describe.each(CONTRACT_BACKENDS)('RateLimiter contract on %s', (backend) => {
  const factory = limiterFactory(backend);
  const expectedSource = backend === 'memory' ? 'memory' : 'redis';

  it('fixed window: admits the limit, refuses until the window ends, then admits again', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: fixedWindow({ limit: 3, window: '1s' }), clock: clock.now });
    for (const remaining of [2, 1, 0]) {
      expect(await limiter.consume('u')).toMatchObject({
        allowed: true,
        reason: 'allowed',
        remaining,
        source: expectedSource,
      });
    }
    clock.advance(400);
    const refused = await limiter.consume('u');
    expect(refused).toMatchObject({
      allowed: false,
      reason: 'limit',
      refusedBy: '3/1s',
      remaining: 0,
      retryAfter: 600,
    });
    expect(refused.resetAt).toBe(clock.start + 1_000);
    clock.advance(600);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 2, resetAt: clock.start + 2_000 });
  });

  it('fixed window anchored at the first hit: starts with the first counted hit, the next counted hit after it ends starts another', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: fixedWindow({ limit: 2, window: '1s', anchor: 'first-hit' }),
      clock: clock.now,
    });
    // Nothing counted yet: a peek starts nothing and reports the window a hit now would open.
    clock.advance(300);
    expect(await limiter.peek('u')).toMatchObject({ allowed: true, remaining: 2, resetAt: clock.start + 1_300 });
    clock.advance(400);
    const first = await limiter.consume('u');
    expect(first).toMatchObject({ allowed: true, remaining: 1, resetAt: clock.start + 1_700 });
    expect(first.limits[0]).toMatchObject({ algorithm: 'fixed-window', resetAt: clock.start + 1_700 });
    clock.advance(500);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0, resetAt: clock.start + 1_700 });
    clock.advance(400);
    // 900 ms into the window (which an epoch-aligned one would have ended at +1000): refused.
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 100, resetAt: clock.start + 1_700 });
    clock.advance(100);
    // The window has ended: this hit starts the next one, a full window long.
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 1, resetAt: clock.start + 2_700 });
    // A refusal by another limit starts nothing; a refund gives back within the running window.
    await limiter.refund('u');
    expect(await limiter.peek('u')).toMatchObject({ remaining: 2, resetAt: clock.start + 2_700 });
    await limiter.reset('u');
    clock.advance(50);
    expect(await limiter.consume('u')).toMatchObject({ remaining: 1, resetAt: clock.start + 2_750 });
  });

  it.each(['restart', 'backoff'] as const)(
    "first-hit window, whenExceeded '%s': a hit over the limit restarts the window (counting on)",
    async (whenExceeded) => {
      const clock = testClock();
      const limiter = factory.make({
        limits: fixedWindow({ limit: 2, window: '1s', anchor: 'first-hit', whenExceeded }),
        clock: clock.now,
      });
      const seen = [];
      for (let i = 0; i < 5; i++) {
        const result = await limiter.hit('u');
        seen.push([result.allowed, result.limits[0]?.used, result.resetAt - result.decidedAt, result.retryAfter]);
        clock.advance(100);
      }
      // @fastify/rate-limit's counting: continueExceeding restarts the window at each hit over
      // the limit; exponentialBackoff restarts it at window × 2^(count − limit − 1).
      expect(seen).toEqual(
        whenExceeded === 'restart'
          ? [
              [true, 1, 1_000, 0],
              [true, 2, 900, 0],
              [false, 3, 1_000, 1_000],
              [false, 4, 1_000, 1_000],
              [false, 5, 1_000, 1_000],
            ]
          : [
              [true, 1, 1_000, 0],
              [true, 2, 900, 0],
              [false, 3, 1_000, 1_000],
              [false, 4, 2_000, 2_000],
              [false, 5, 4_000, 4_000],
            ],
      );
      // A peek changes nothing; the count lives until the (last) window ends.
      expect(await limiter.peek('u')).toMatchObject({ allowed: false, remaining: 0 });
      clock.advance(whenExceeded === 'restart' ? 900 : 3_900);
      expect(await limiter.hit('u')).toMatchObject({ allowed: true, remaining: 1 });
    },
  );

  it.each([
    ['alone', 1],
    ['beside another limit', 2],
  ] as const)(
    "first-hit window, whenExceeded 'backoff' (%s): a call admitted in a lengthened window reports that window's end",
    async (_, count) => {
      const clock = testClock();
      const backoff = fixedWindow({ limit: 10, window: '3s', anchor: 'first-hit', whenExceeded: 'backoff' });
      const limiter = factory.make({
        limits: count === 1 ? backoff : [backoff, fixedWindow({ limit: 100, window: '1h' })],
        clock: clock.now,
      });
      await limiter.consume('u', { cost: 4 });
      // 12 of 10: the window restarts 3 s × 2^(12 − 10 − 1) = 6 s long.
      expect(await limiter.hit('u', { cost: 8 })).toMatchObject({ allowed: false, resetAt: clock.start + 6_000 });
      await limiter.refund('u', { cost: 3 });
      const admitted = await limiter.consume('u');
      expect(admitted).toMatchObject({ allowed: true, remaining: 0 });
      expect(admitted.limits[0]).toMatchObject({ used: 10, resetAt: clock.start + 6_000 });
      expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 6_000 });
    },
  );

  it('whenExceeded needs a first-hit window', () => {
    expect(() => fixedWindow({ limit: 2, window: '1s', whenExceeded: 'restart' })).toThrow(
      /"whenExceeded" for fixedWindow\(\)/,
    );
  });

  it('a first-hit window is not started by a call another limit refused', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [
        fixedWindow({ limit: 1, window: '10s' }),
        fixedWindow({ limit: 5, window: '1s', anchor: 'first-hit', name: 'anchored' }),
      ],
      clock: clock.now,
    });
    await limiter.consume('u');
    clock.advance(2_000);
    const refused = await limiter.consume('u');
    expect(refused).toMatchObject({ allowed: false, refusedBy: '1/10s' });
    // The anchored limit counted its one hit at +0, whose window ended at +1000; nothing since.
    expect(refused.limits[1]).toMatchObject({ used: 0, resetAt: clock.start + 3_000 });
    clock.advance(8_000);
    expect((await limiter.consume('u')).limits[1]).toMatchObject({ used: 1, resetAt: clock.start + 11_000 });
  });

  it('sliding window: weighs the previous window and says exactly when to retry', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: slidingWindow({ limit: 10, window: 1_000 }), clock: clock.now });
    for (let i = 0; i < 10; i++) expect((await limiter.consume('u')).allowed).toBe(true);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, remaining: 0 });
    // Half-way through the next window the previous 10 weigh 5: five more fit.
    clock.advance(1_500);
    expect(await limiter.peek('u')).toMatchObject({ allowed: true, remaining: 5 });
    for (let i = 0; i < 5; i++) expect((await limiter.consume('u')).allowed).toBe(true);
    const refused = await limiter.consume('u');
    // 5 counted now, 10 before: room for one more once the weight drops to 4, 100 ms later.
    expect(refused).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 100 });
    clock.advance(99);
    expect((await limiter.consume('u')).allowed).toBe(false);
    clock.advance(1);
    expect((await limiter.consume('u')).allowed).toBe(true);
  });

  it('sliding log: exact, and frees a slot when the oldest call leaves the window', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: slidingLog({ limit: 3, window: 1_000 }), clock: clock.now });
    for (const at of [0, 100, 200]) {
      clock.set(clock.start + at);
      expect((await limiter.consume('u')).allowed).toBe(true);
    }
    clock.set(clock.start + 300);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 700, resetAt: clock.start + 1_200 });
    clock.set(clock.start + 1_000);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0, resetAt: clock.start + 2_000 });
    expect((await limiter.consume('u')).allowed).toBe(false);
  });

  it('sliding log: every unit is its own entry, even within one millisecond and after a refund', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: slidingLog({ limit: 30, window: '1m' }), clock: clock.now });
    // All in one millisecond of the test clock.
    for (let i = 0; i < 12; i++) await limiter.consume('u');
    await limiter.refund('u');
    expect((await limiter.peek('u')).limits[0]?.used).toBe(11);
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 18 });
    expect(await limiter.consume('u', { cost: 5 })).toMatchObject({ allowed: true, remaining: 13 });
    await limiter.refund('u', { cost: 3 });
    expect(await limiter.consume('u', { cost: 4 })).toMatchObject({ allowed: true, remaining: 12 });
    expect((await limiter.peek('u')).limits[0]?.used).toBe(18);
    clock.advance(60_000);
    expect((await limiter.peek('u')).limits[0]?.used).toBe(0);
  });

  it('checks several limits atomically: a refusal by one consumes none', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [fixedWindow({ limit: 5, window: '10s' }), slidingWindow({ limit: 2, window: '1s', name: 'burst' })],
      clock: clock.now,
    });
    await limiter.consume('u');
    await limiter.consume('u');
    const refused = await limiter.consume('u');
    expect(refused).toMatchObject({ allowed: false, refusedBy: 'burst', limit: 2 });
    expect(refused.limits.map((limit) => [limit.name, limit.allowed, limit.used])).toEqual([
      ['5/10s', true, 2],
      ['burst', false, 2],
    ]);
    // The 10 s limit did not count the refused call.
    expect((await limiter.peek('u')).limits[0]).toMatchObject({ used: 2, remaining: 3 });
    clock.advance(2_000);
    const next = await limiter.consume('u', { cost: 2 });
    expect(next).toMatchObject({ allowed: true });
    expect(next.limits.map((limit) => limit.used)).toEqual([4, 2]);
    // The deciding limit is the one with the least room.
    expect(next).toMatchObject({ limit: 2, remaining: 0 });
  });

  it('counts cost, refunds it (never below zero), peeks without counting, and resets', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [fixedWindow({ limit: 5, window: '1m' }), slidingLog({ limit: 5, window: '1m' })],
      clock: clock.now,
    });
    expect(await limiter.consume('u', { cost: 3 })).toMatchObject({ allowed: true, remaining: 2 });
    expect(await limiter.consume('u', { cost: 3 })).toMatchObject({ allowed: false, remaining: 2 });
    expect(await limiter.peek('u', { cost: 2 })).toMatchObject({ allowed: true, remaining: 2 });
    expect(await limiter.consume('u', { cost: 2 })).toMatchObject({ allowed: true, remaining: 0 });
    await limiter.refund('u', { cost: 4 });
    expect((await limiter.peek('u')).limits.map((limit) => limit.used)).toEqual([1, 1]);
    await limiter.refund('u', { cost: 5 });
    expect((await limiter.peek('u')).limits.map((limit) => limit.used)).toEqual([0, 0]);
    await limiter.consume('u', { cost: 5 });
    await limiter.reset('u');
    expect(await limiter.consume('u', { cost: 5 })).toMatchObject({ allowed: true, remaining: 0 });
    await expect(limiter.consume('u', { cost: 6 })).rejects.toThrow(InvalidOptionError);
    await expect(limiter.consume('u', { cost: 0 })).rejects.toThrow(
      /"cost".*received 0; expected an integer from 1 to 5/,
    );
    await expect(limiter.consume('')).rejects.toThrow(/"id"/);
  });

  it('blocks after a refusal without counting, and the block ends cleanly', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [fixedWindow({ limit: 2, window: '1s' }), fixedWindow({ limit: 100, window: '1h' })],
      blockFor: '5s',
      clock: clock.now,
    });
    await limiter.consume('u');
    await limiter.consume('u');
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 5_000 });
    for (let i = 0; i < 10; i++) {
      clock.advance(400);
      const blocked = await limiter.consume('u');
      expect(blocked).toMatchObject({
        allowed: false,
        reason: 'blocked',
        retryAfter: 5_000 - 400 * (i + 1),
        refusedBy: undefined,
      });
    }
    clock.advance(1_000);
    const after = await limiter.consume('u');
    expect(after.allowed).toBe(true);
    // Nothing was counted while blocked: the hour holds the 2 admitted calls and this one.
    expect(after.limits[1]?.used).toBe(3);
    expect((await limiter.consume('u')).allowed).toBe(true);
  });

  it('blocks at least until the refusing limit admits again', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: fixedWindow({ limit: 1, window: '10s' }),
      blockFor: '1s',
      clock: clock.now,
    });
    await limiter.consume('u');
    clock.advance(2_000);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 8_000 });
    clock.advance(8_000);
    expect((await limiter.consume('u')).allowed).toBe(true);
  });

  it("blockMode 'exact': blocks for exactly blockFor without counting, then counts afresh", async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [
        fixedWindow({ limit: 2, window: '10s', anchor: 'first-hit' }),
        slidingWindow({ limit: 50, window: '1m' }),
      ],
      blockFor: '2s',
      blockMode: 'exact',
      clock: clock.now,
    });
    await limiter.consume('u');
    await limiter.consume('u');
    // The limit would have room again in 10 s; the block lasts exactly 2 s.
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 2_000 });
    clock.advance(1_500);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'blocked', retryAfter: 500 });
    expect((await limiter.peek('u')).allowed).toBe(false);
    clock.advance(500);
    // The block is over and every count starts afresh: a new first-hit window, a sliding window at 1.
    const after = await limiter.consume('u');
    expect(after).toMatchObject({ allowed: true, reason: 'allowed' });
    expect(after.limits.map((limit) => [limit.used, limit.resetAt])).toEqual([
      [1, clock.start + 12_000],
      [1, clock.start + 60_000],
    ]);
    expect((await limiter.consume('u')).allowed).toBe(true);
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, reason: 'limit', retryAfter: 2_000 });
  });

  it("blockMode 'exact' after a block nobody called during: a peek sees fresh counts", async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: fixedWindow({ limit: 1, window: '1m' }),
      blockFor: 1_000,
      blockMode: 'exact',
      clock: clock.now,
    });
    await limiter.consume('u');
    expect(await limiter.consume('u')).toMatchObject({ allowed: false, retryAfter: 1_000 });
    clock.advance(1_000);
    expect(await limiter.peek('u')).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limiter.consume('u')).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('hit() counts past the limit and never blocks', async () => {
    const clock = testClock();
    const limiter = factory.make({ limits: fixedWindow({ limit: 2, window: '1s' }), blockFor: '1m', clock: clock.now });
    const used = [];
    for (let i = 0; i < 4; i++) used.push((await limiter.hit('u')).limits[0]?.used);
    expect(used).toEqual([1, 2, 3, 4]);
    expect(await limiter.hit('u')).toMatchObject({ allowed: false, reason: 'limit', remaining: 0 });
    clock.advance(1_000);
    expect(await limiter.hit('u')).toMatchObject({ allowed: true, remaining: 1 });
    const log = factory.make({ limits: slidingLog({ limit: 2, window: '1s' }) });
    await expect(log.hit('u')).rejects.toThrow(/sliding log cannot count past its limit/);
  });

  it('keeps identities apart, including ones with braces and percent signs', async () => {
    const clock = testClock();
    const limiter = factory.make({
      limits: [fixedWindow({ limit: 1, window: '1m' }), slidingLog({ limit: 1, window: '1m' })],
      clock: clock.now,
    });
    const ids = ['a', '{a}', 'a}', '}', '{', '%7Ba%7D', '', 'ünï cödé'].filter(Boolean);
    for (const id of ids) expect((await limiter.consume(id)).allowed).toBe(true);
    for (const id of ids) expect((await limiter.consume(id)).allowed).toBe(false);
  });

  it('resetAll() forgets every identity of the limiter, and only those', async () => {
    const clock = testClock();
    const prefix = `rs-test:rl-all-[x]*-${Math.random().toString(36).slice(2)}`;
    const limiter = factory.make({ prefix, limits: fixedWindow({ limit: 1, window: '1m' }), clock: clock.now });
    const other = factory.make({
      prefix: `${prefix}x`,
      limits: fixedWindow({ limit: 1, window: '1m' }),
      clock: clock.now,
    });
    const ids = Array.from({ length: 30 }, (_, i) => `id${i}`);
    for (const id of ids) await limiter.consume(id);
    await other.consume('id0');
    await limiter.resetAll();
    for (const id of ids) expect((await limiter.consume(id)).allowed).toBe(true);
    expect((await other.consume('id0')).allowed).toBe(false);
  });

  if (backend !== 'memory') {
    it('uses Redis server time and keeps every key inside its prefix', async () => {
      const prefix = `rs-test:rl-time-${Math.random().toString(36).slice(2)}`;
      const limiter = factory.make({
        prefix,
        limits: [fixedWindow({ limit: 2, window: '1m' }), slidingLog({ limit: 2, window: '1m' })],
        blockFor: '1s',
      });
      const result = await limiter.consume('u');
      expect(Math.abs(result.decidedAt - Date.now())).toBeLessThan(1_000);
      await limiter.consume('u');
      await limiter.consume('u');
      // Two limit states and a block key, all under the prefix, all expiring: the fixed window
      // at its end (within the minute), the log a window after its last call, the block after 1 s.
      expect(await countKeys(factory.redis!, `${prefix}:rl:{u}:`)).toBe(3);
      const ttls = await Promise.all(
        ['f60000', 'l60000', 'block'].map((suffix) => factory.redis!.pttl(`${prefix}:rl:{u}:${suffix}`)),
      );
      expect(ttls[0]).toBeGreaterThan(0);
      expect(ttls[0]).toBeLessThanOrEqual(60_000);
      expect(ttls[1]).toBeGreaterThan(59_000);
      expect(ttls[2]).toBeGreaterThan(0);
      expect(ttls[2]).toBeLessThanOrEqual(60_000);
      // Seen without the client's keyPrefix, the keys carry it (ioredis added it to each key).
      const keyPrefix = factory.redis?.options.keyPrefix ?? '';
      const raw = connect(backend.startsWith('cluster') ? 'cluster' : 'standalone');
      expect(await raw.exists(`${keyPrefix}${prefix}:rl:{u}:f60000`)).toBe(1);
      raw.disconnect();
    });

    it('many concurrent identities, coalesced into batches, are each decided exactly', async () => {
      const limiter = factory.make({ limits: slidingWindow({ limit: 3, window: '1m' }) });
      const ids = Array.from({ length: 150 }, (_, i) => `batch-${i}`);
      // Four calls per identity, all issued in the same tick: three admitted, one refused.
      const results = await Promise.all(ids.flatMap((id) => [1, 2, 3, 4].map(() => limiter.consume(id))));
      const admitted = new Map<number, number>();
      results.forEach((result, i) => {
        const id = Math.floor(i / 4);
        if (result.allowed) admitted.set(id, (admitted.get(id) ?? 0) + 1);
        expect(result.source).toBe('redis');
      });
      expect([...admitted.values()]).toEqual(ids.map(() => 3));
      expect(results.filter((result) => !result.allowed).every((result) => result.reason === 'limit')).toBe(true);
    });
  }
});
