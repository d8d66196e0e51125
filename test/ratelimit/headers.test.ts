import { describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter, rateLimitHeaders, slidingLog, slidingWindow } from '../../src/index.js';
import { BACKENDS, limiterFactory, testClock } from './support.js';

describe('rateLimitHeaders', () => {
  async function results() {
    const clock = testClock();
    const limiter = new RateLimiter({
      limits: [
        slidingWindow({ limit: 2, window: '10s', name: 'burst' }),
        fixedWindow({ limit: 100, window: '1h', name: 'hourly' }),
      ],
      clock: clock.now,
    });
    clock.advance(4_000);
    const allowed = await limiter.consume('u');
    await limiter.consume('u');
    const refused = await limiter.consume('u');
    return { clock, allowed, refused };
  }

  it('formats draft-6', async () => {
    const { allowed } = await results();
    expect(rateLimitHeaders(allowed, 'draft-6')).toEqual({
      'RateLimit-Policy': '2;w=10, 100;w=3600',
      'RateLimit-Limit': '2',
      'RateLimit-Remaining': '1',
      'RateLimit-Reset': '6',
    });
  });

  it('formats draft-7, with Retry-After when refused, and a reset no earlier than Retry-After', async () => {
    const { refused } = await results();
    // The sliding window refuses past its own window's end (10 s in, 11 s to wait): a reset
    // of 6 would send a client that trusts it back 5 s too early.
    expect(rateLimitHeaders(refused, 'draft-7')).toEqual({
      'RateLimit-Policy': '2;w=10, 100;w=3600',
      RateLimit: 'limit=2, remaining=0, reset=11',
      'Retry-After': '11',
    });
  });

  it.each(BACKENDS)('never sends a reset earlier than Retry-After, in any header mode, on %s', async (backend) => {
    const factory = limiterFactory(backend);
    const clock = testClock();
    const limiter = factory.make({
      limits: [slidingWindow({ limit: 3, window: '10s' }), slidingLog({ limit: 4, window: '7s' })],
      blockFor: '2s',
      clock: clock.now,
    });
    let refusals = 0;
    for (let step = 0; step < 120; step++) {
      clock.advance((step * 7_919) % 1_700);
      const result = await limiter.consume('u');
      if (result.allowed) continue;
      refusals++;
      const retry = Number(rateLimitHeaders(result, 'draft-7')['Retry-After']);
      for (const mode of ['draft-6', 'draft-7', 'draft-8', 'legacy'] as const) {
        const headers = rateLimitHeaders(result, mode, { legacyReset: 'delta-seconds' });
        const resets =
          mode === 'draft-6'
            ? [headers['RateLimit-Reset']]
            : mode === 'draft-7'
              ? [/reset=(\d+)/.exec(headers.RateLimit ?? '')?.[1]]
              : mode === 'draft-8'
                ? [...(headers.RateLimit ?? '').matchAll(/"[^"]+";r=0;t=(\d+)/g)].map((match) => match[1])
                : [headers['X-RateLimit-Reset']];
        for (const reset of resets) expect(Number(reset)).toBeGreaterThanOrEqual(retry);
      }
    }
    expect(refusals).toBeGreaterThan(20);
  });

  it('formats draft-8 with one item per limit', async () => {
    const { allowed } = await results();
    expect(rateLimitHeaders(allowed, 'draft-8')).toEqual({
      'RateLimit-Policy': '"burst";q=2;w=10, "hourly";q=100;w=3600',
      RateLimit: '"burst";r=1;t=6, "hourly";r=99;t=3596',
    });
  });

  it('formats the legacy X-RateLimit-* set, reset as epoch or delta seconds', async () => {
    const { allowed, clock } = await results();
    expect(rateLimitHeaders(allowed, 'legacy')).toEqual({
      'X-RateLimit-Limit': '2',
      'X-RateLimit-Remaining': '1',
      'X-RateLimit-Reset': String((clock.start + 10_000) / 1_000),
    });
    expect(rateLimitHeaders(allowed, 'legacy', { legacyReset: 'delta-seconds' })['X-RateLimit-Reset']).toBe('6');
  });
});
