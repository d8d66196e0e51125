import { describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter, rateLimitHeaders, slidingWindow } from '../../src/index.js';
import { testClock } from './support.js';

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

  it('formats draft-7, with Retry-After when refused', async () => {
    const { refused } = await results();
    expect(rateLimitHeaders(refused, 'draft-7')).toEqual({
      'RateLimit-Policy': '2;w=10, 100;w=3600',
      RateLimit: 'limit=2, remaining=0, reset=6',
      'Retry-After': '11',
    });
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
