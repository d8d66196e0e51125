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
      "\"limits[0].algorithm\" for RateLimiter: received undefined; expected 'fixed-window', 'sliding-window' or 'sliding-log': a limit made with fixedWindow()",
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
