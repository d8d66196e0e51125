import { describe, expect, it } from 'vitest';
import { fixedWindow, InvalidOptionError, RateLimiter, slidingLog, slidingWindow } from '../../src/index.js';

function message(build: () => unknown): string {
  try {
    build();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return (error as Error).message;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('rate-limit options', () => {
  it.each([
    [
      () => fixedWindow({ limit: 0, window: '1s' }),
      '"limit" for fixedWindow(): received 0; expected a positive integer',
    ],
    [() => slidingWindow({ limit: 1.5, window: '1s' }), '"limit" for slidingWindow(): received 1.5'],
    [
      () => fixedWindow({ limit: 5, window: '5 parsecs' as never }),
      '"window" for fixedWindow(): received "5 parsecs"; expected a duration',
    ],
    [
      () => slidingLog({ limit: 50_000, window: '1m' }),
      'expected a positive integer up to 10000 (the log stores one entry per unit)',
    ],
    [() => fixedWindow({ limit: 5, window: 0 }), '"window" for fixedWindow(): received 0'],
    [
      () => new RateLimiter({ limits: [] }),
      '"limits" for RateLimiter: received an empty array; expected at least 1 item(s)',
    ],
    [
      () => new RateLimiter({ limits: [{ limit: 5 }] as never }),
      "\"limits[0].algorithm\" for RateLimiter: received undefined; expected 'fixed-window', 'sliding-window', 'sliding-log' or 'gcra': a limit made with fixedWindow()",
    ],
    [
      () =>
        new RateLimiter({
          limits: [fixedWindow({ limit: 5, window: '1s' }), fixedWindow({ limit: 9, window: 1_000 })],
        }),
      '"limits[1]" for RateLimiter: received {"algorithm":"fixed-window","limit":9,"windowMs":1000,"name":"9/1000ms","anch...; expected a limit that differs from limits[0] in algorithm or window',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), onRedisError: 'ignore' as never }),
      'expected one of "allow", "deny", "memory"',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), blockFor: '-1s' as never }),
      '"blockFor" for RateLimiter',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), timeout: 0 }),
      '"timeout" for RateLimiter: received 0',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), prefix: 'a{b}' }),
      '"prefix" for RateLimiter',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), redis: {} as never }),
      '"redis" for RateLimiter: received {}; expected an ioredis Redis or Cluster',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), localDenyCache: { maxEntries: 0 } }),
      '"localDenyCache.maxEntries"',
    ],
    [
      () => new RateLimiter({ limit: 5 } as never),
      '"limit" for RateLimiter: received 5; expected one of the known options: redis, prefix, limits',
    ],
  ])('%#: rejects bad options with a message naming the option, the value and what is allowed', (build, expected) => {
    expect(message(build)).toContain(expected);
  });

  const rule = { algorithm: 'fixed-window', limit: 5, windowMs: 1_000, name: 'hand-made' };
  it.each([
    [
      { ...rule, windowMs: -1_000 },
      '"limits[0].windowMs" for RateLimiter: received -1000; expected a whole number of milliseconds from 1',
    ],
    [{ ...rule, windowMs: 0 }, '"limits[0].windowMs" for RateLimiter: received 0'],
    [{ ...rule, windowMs: 1.5 }, '"limits[0].windowMs" for RateLimiter: received 1.5'],
    [{ ...rule, windowMs: 1e300 }, '"limits[0].windowMs" for RateLimiter: received 1e+300'],
    [
      { ...rule, limit: 0 },
      '"limits[0].limit" for RateLimiter: received 0; expected a positive integer up to 2^53 - 1',
    ],
    [{ ...rule, limit: 2 ** 60 }, '"limits[0].limit" for RateLimiter'],
    [
      { ...rule, algorithm: 'sliding-log', limit: 50_000 },
      '"limits[0].limit" for RateLimiter: received 50000; expected a positive integer up to 10000',
    ],
    [{ ...rule, algorithm: 'leaky-bucket' }, '"limits[0].algorithm" for RateLimiter: received "leaky-bucket"'],
    [{ ...rule, algorithm: 'sliding-window', anchor: 'first-hit' }, '"limits[0].anchor" for RateLimiter'],
    [{ ...rule, anchor: 'noon' }, '"limits[0].anchor" for RateLimiter: received "noon"'],
    [{ ...rule, name: 'a b' }, '"limits[0].name" for RateLimiter: received "a b"'],
  ])('%#: validates a limit however it was built (hand-made, spread, frozen)', (limit, expected) => {
    expect(message(() => new RateLimiter({ limits: [limit as never] }))).toContain(expected);
  });

  it('accepts a spread copy of a built limit, and keeps its anchor', () => {
    const built = fixedWindow({ limit: 5, window: '1s', anchor: 'first-hit' });
    const limiter = new RateLimiter({ limits: { ...built, name: 'copy' } });
    expect(limiter.limits[0]).toEqual({ ...built, name: 'copy' });
  });

  it.each([
    [() => fixedWindow({ limit: 5, window: 1e300 }), '"window" for fixedWindow(): received 1e+300'],
    [() => slidingWindow({ limit: 5, window: '5000000d' }), '"window" for slidingWindow(): received "5000000d"'],
    [() => fixedWindow({ limit: 5, window: '1s', anchor: 'noon' as never }), '"anchor" for fixedWindow()'],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), timeout: 1e300 }),
      '"timeout" for RateLimiter: received 1e+300',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), blockFor: 1e300 }),
      '"blockFor" for RateLimiter: received 1e+300',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), localDenyCache: { maxAge: 2 ** 40 } }),
      '"localDenyCache.maxAge" for RateLimiter',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), blockMode: 'forever' as never }),
      '"blockMode" for RateLimiter: received "forever"; expected one of "until-room", "exact"',
    ],
    [
      () => new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }), batch: { maxSize: 0 } }),
      '"batch.maxSize" for RateLimiter: received 0',
    ],
  ])('%#: refuses durations Redis or timers cannot follow, and unknown values', (build, expected) => {
    expect(message(build)).toContain(expected);
  });

  it('call options are as strict as constructor options', async () => {
    const limiter = new RateLimiter({ limits: fixedWindow({ limit: 5, window: '1s' }) });
    for (const call of [
      () => limiter.consume('u', { costs: 3 } as never),
      () => limiter.peek('u', { cost: 1, extra: true } as never),
      () => limiter.hit('u', { weight: 2 } as never),
      () => limiter.refund('u', { costs: 3 } as never),
    ]) {
      await expect(call()).rejects.toThrow(InvalidOptionError);
    }
    await expect(limiter.consume('u', { costs: 3 } as never)).rejects.toThrow(
      /invalid option "costs" for RateLimiter.consume\(\): received 3; expected one of the known options: cost/,
    );
    await expect(limiter.consume('u', 3 as never)).rejects.toThrow(/"\(options\)"/);
    // Nothing was counted by the refused calls.
    expect((await limiter.peek('u')).remaining).toBe(5);
  });

  it('accepts one limit or several, and keeps their names', () => {
    const limiter = new RateLimiter({
      limits: [slidingWindow({ limit: 10, window: '1s', name: 'burst' }), fixedWindow({ limit: 1_000, window: '1d' })],
    });
    expect(limiter.limits.map((rule) => [rule.name, rule.algorithm, rule.limit, rule.windowMs])).toEqual([
      ['burst', 'sliding-window', 10, 1_000],
      ['1000/1d', 'fixed-window', 1_000, 86_400_000],
    ]);
  });
});
