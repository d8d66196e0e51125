import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter, type RateLimitResult, slidingWindow } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { type Backend, limiterFactory, testClock } from './support.js';

function observable({ source: _source, ...rest }: RateLimitResult) {
  return rest;
}

const roundsArbitrary = fc.array(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constantFrom<'consume' | 'peek' | 'hit'>('consume', 'consume', 'peek', 'hit'),
        cost: fc.integer({ min: 1, max: 3 }),
        // Concurrent checks of one operation: one batch (or a few), the same identity many times.
        ids: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 2, maxLength: 40 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('refund' as const),
        id: fc.integer({ min: 0, max: 4 }),
        cost: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), id: fc.integer({ min: 0, max: 4 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        op: fc.constant('advance' as const),
        ms: fc.oneof(
          fc.integer({ min: 1, max: 2_000 }),
          fc.integer({ min: 1, max: 20 }).map((k) => k * 250),
        ),
      }),
    },
  ),
  { minLength: 1, maxLength: 12 },
);

/**
 * Five fixed and sliding windows (sliding windows of different lengths), no block: the lean
 * script with its flat batch reply. Concurrent peeks, hits and consumes of a few identities (each
 * identity several times in one batch, some refused, some admitted, costs above one) decide on
 * Redis as the in-memory backend decides them in call order; also through an ioredis keyPrefix.
 */
describe.each<Backend>(['standalone', 'cluster', 'standalone, keyPrefix', 'cluster, keyPrefix'])(
  'five windows, batched operations, on %s',
  (backend) => {
    const factory = limiterFactory(backend);

    it('decide as the in-memory backend', async () => {
      // Rounds of at least 10 concurrent checks, and how many commands each took.
      const largeRounds: Array<{ checks: number; commands: number }> = [];
      await fc.assert(
        fc.asyncProperty(roundsArbitrary, async (rounds) => {
          const clock = testClock();
          const limits = [
            slidingWindow({ limit: 4, window: '1s' }),
            fixedWindow({ limit: 6, window: '1s' }),
            slidingWindow({ limit: 9, window: 1_500 }),
            slidingWindow({ limit: 12, window: '3s' }),
            fixedWindow({ limit: 30, window: '1m' }),
          ];
          const common = { limits, clock: clock.now, localDenyCache: false as const, timeout: '10s' as const };
          const memory = new RateLimiter(common);
          const onRedis = factory.make({ ...common, batch: { maxSize: 8 } });
          // Every node learns the script first.
          await Promise.all([0, 1, 2, 3, 4].map((id) => onRedis.peek(`id-${id}`)));
          for (const round of rounds) {
            if (round.op === 'advance') {
              clock.advance(round.ms);
            } else if (round.op === 'refund') {
              await memory.refund(`id-${round.id}`, { cost: round.cost });
              await onRedis.refund(`id-${round.id}`, { cost: round.cost });
            } else if (round.op === 'reset') {
              await memory.reset(`id-${round.id}`);
              await onRedis.reset(`id-${round.id}`);
            } else {
              const run = (limiter: RateLimiter) =>
                Promise.all(round.ids.map((id) => limiter[round.op](`id-${id}`, { cost: round.cost })));
              const want = (await run(memory)).map(observable);
              let got: unknown[] = [];
              const log = await countCommands(async () => {
                got = (await run(onRedis)).map(observable);
              });
              if (round.ids.length >= 10) largeRounds.push({ checks: round.ids.length, commands: log.count });
              expect({ round, got }).toEqual({ round, got: want });
            }
          }
        }),
        {
          numRuns: Number(process.env.RUNS ?? 25),
          // At least one round large enough to batch, whatever the seed draws.
          examples: [[[{ op: 'consume', cost: 1, ids: Array.from({ length: 40 }, (_, i) => i % 5) }]]],
        },
      );
      // From idle the batcher sends the first 8 checks alone (fewer than 8 in flight), then batches:
      // on standalone every round of 10 or more took fewer commands than checks (multi-identity
      // calls, flat replies); on a Cluster every identity's check is its own call in a pipeline.
      expect(largeRounds.length).toBeGreaterThan(0);
      for (const round of largeRounds) {
        if (backend.startsWith('standalone')) expect(round.commands).toBeLessThan(round.checks);
        else expect(round.commands).toBe(round.checks);
      }
    }, 120_000);
  },
);
