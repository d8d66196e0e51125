import { describe, expect, it } from 'vitest';
import { fixedWindow, gcra, InvalidOptionError, RateLimiter, rateLimitHeaders } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { randomPrefix } from '../harness/context.js';
import { BACKENDS, limiterFactory } from './support.js';

describe.each(BACKENDS)('allow and deny lists on %s', (backend) => {
  const factory = limiterFactory(backend);

  it('an allow-listed identity passes without counting; a deny-listed one is refused without counting', async () => {
    const prefix = randomPrefix('lists');
    const limiter = factory.make({
      prefix,
      limits: [
        fixedWindow({ limit: 2, window: '1m', anchor: 'first-hit' }),
        gcra({ limit: 1, window: '1s', burst: 3 }),
      ],
      allowList: ['partner'],
      denyList: new Set(['abuser']),
    });
    for (let i = 0; i < 5; i++) {
      expect(await limiter.consume('partner')).toMatchObject({
        allowed: true,
        reason: 'allow-list',
        source: 'policy',
        limit: 2,
        remaining: 2,
        retryAfter: 0,
        limits: [],
      });
      expect(await limiter.consume('abuser')).toMatchObject({
        allowed: false,
        reason: 'deny-list',
        source: 'policy',
        remaining: 0,
        retryAfter: 0,
        refusedBy: undefined,
      });
    }
    expect(await limiter.peek('partner')).toMatchObject({ allowed: true, reason: 'allow-list' });
    expect(await limiter.peek('abuser')).toMatchObject({ allowed: false, reason: 'deny-list' });
    // Nothing was counted for either: off the lists, both have their full limits.
    const plain = factory.make({ prefix, limits: [...limiter.limits] });
    expect(await plain.peek('partner')).toMatchObject({ reason: 'allowed', remaining: 2 });
    expect(await plain.peek('abuser')).toMatchObject({ reason: 'allowed', remaining: 2 });
    // Everyone else is limited as usual.
    await limiter.consume('user');
    await limiter.consume('user');
    expect(await limiter.consume('user')).toMatchObject({ allowed: false, reason: 'limit' });
  });

  it('takes a predicate, async too, and checks the deny list first', async () => {
    const asked: string[] = [];
    const limiter = factory.make({
      limits: fixedWindow({ limit: 1, window: '1m' }),
      allowList: (id) => {
        asked.push(`allow ${id}`);
        return id.startsWith('staff:');
      },
      denyList: async (id) => {
        asked.push(`deny ${id}`);
        return id === 'staff:fired';
      },
    });
    expect((await limiter.consume('staff:ann')).reason).toBe('allow-list');
    expect((await limiter.consume('staff:fired')).reason).toBe('deny-list');
    expect((await limiter.consume('user:1')).reason).toBe('allowed');
    expect(asked).toEqual(['deny staff:ann', 'allow staff:ann', 'deny staff:fired', 'deny user:1', 'allow user:1']);
  });

  it('a predicate that throws, or answers something else than a boolean, rejects the call', async () => {
    const throwing = factory.make({
      limits: fixedWindow({ limit: 1, window: '1m' }),
      allowList: () => {
        throw new Error('lookup failed');
      },
    });
    await expect(throwing.consume('u')).rejects.toThrow('lookup failed');
    const sloppy = factory.make({
      limits: fixedWindow({ limit: 1, window: '1m' }),
      denyList: (() => 'yes') as never,
    });
    await expect(sloppy.consume('u')).rejects.toThrow(InvalidOptionError);
  });

  it('hit(), refund() and reset() ignore the lists (counter semantics for drop-in stores)', async () => {
    const limiter = factory.make({ limits: fixedWindow({ limit: 3, window: '1m' }), allowList: ['partner'] });
    expect(await limiter.hit('partner')).toMatchObject({ reason: 'allowed', remaining: 2 });
    await limiter.refund('partner');
    await limiter.reset('partner');
  });
});

describe('lists cost no round trip', () => {
  const factory = limiterFactory('standalone');

  it('on the allow or deny list: zero commands; off them: one', async () => {
    const limiter = factory.make({
      limits: fixedWindow({ limit: 5, window: '1m' }),
      allowList: ['partner'],
      denyList: async (id) => id === 'abuser',
    });
    await limiter.consume('warm');
    expect((await countCommands(() => limiter.consume('partner'))).count).toBe(0);
    expect((await countCommands(() => limiter.consume('abuser'))).count).toBe(0);
    expect((await countCommands(() => limiter.consume('user'))).count).toBe(1);
  });
});

describe('list options and headers', () => {
  it.each<[string, unknown]>([
    ['a string (not a list of ids)', 'admin'],
    ['an array with an empty id', ['ok', '']],
    ['an array with a number', ['ok', 42]],
    ['an object', { admin: true }],
  ])('refuses %s with a named error', (_, list) => {
    const build = () => new RateLimiter({ limits: fixedWindow({ limit: 1, window: '1s' }), allowList: list as never });
    expect(build).toThrow(InvalidOptionError);
    expect(build).toThrow(/"allowList" for RateLimiter/);
  });

  it('a list answer has no rate-limit headers and no Retry-After: it describes no count', async () => {
    const limiter = new RateLimiter({
      limits: fixedWindow({ limit: 1, window: '1s' }),
      allowList: ['a'],
      denyList: ['d'],
    });
    for (const mode of ['draft-6', 'draft-7', 'draft-8', 'legacy'] as const) {
      expect(rateLimitHeaders(await limiter.consume('a'), mode)).toEqual({});
      expect(rateLimitHeaders(await limiter.consume('d'), mode)).toEqual({});
    }
  });
});
