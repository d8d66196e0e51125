import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixedWindow, RateLimiter, type RateLimitResult, slidingWindow } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { type Backend, limiterFactory, testClock } from './support.js';

/**
 * A rolling upgrade, through the limiter: instances on the lean script and instances on the
 * general script share one prefix, so one identity's counters. The general script is forced by
 * one extra limit it alone can decide (a first-hit window with a limit no test reaches: it never
 * refuses, and has its own key), so both see the same fixed and sliding windows. Calls go to
 * either at random, batched; every decision (on the shared windows) is the in-memory backend's.
 */
const roundsArbitrary = fc.array(
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        op: fc.constantFrom<'consume' | 'peek' | 'hit'>('consume', 'consume', 'peek', 'hit'),
        cost: fc.integer({ min: 1, max: 3 }),
        calls: fc.array(fc.record({ id: fc.integer({ min: 0, max: 3 }), general: fc.boolean() }), {
          minLength: 1,
          maxLength: 24,
        }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('refund' as const),
        id: fc.integer({ min: 0, max: 3 }),
        cost: fc.integer({ min: 1, max: 3 }),
        general: fc.boolean(),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 1_600 }) }),
    },
  ),
  { minLength: 1, maxLength: 12 },
);

/** What both must agree on: the decision and the verdicts of the shared windows. */
function shared(result: RateLimitResult, windows: number) {
  const { source: _source, limits, ...rest } = result;
  return { ...rest, limits: limits.slice(0, windows) };
}

describe.each<Backend>(['standalone', 'cluster'])('lean and general scripts share counters (%s)', (backend) => {
  const factory = limiterFactory(backend);

  it('decide as one in-memory limiter', async () => {
    await fc.assert(
      fc.asyncProperty(roundsArbitrary, async (rounds) => {
        const clock = testClock();
        const windows = [
          slidingWindow({ limit: 4, window: '1s' }),
          fixedWindow({ limit: 7, window: 1_500 }),
          slidingWindow({ limit: 10, window: '3s' }),
        ];
        const never = fixedWindow({ limit: 1_000_000, window: '1h', anchor: 'first-hit' });
        const common = { clock: clock.now, localDenyCache: false as const, timeout: '10s' as const };
        const prefix = randomPrefix('roll');
        const memory = new RateLimiter({ ...common, limits: windows });
        const lean = factory.make({ ...common, prefix, limits: windows });
        const general = factory.make({ ...common, prefix, limits: [...windows, never] });
        await Promise.all([0, 1, 2, 3].flatMap((id) => [lean.peek(`id-${id}`), general.peek(`id-${id}`)]));
        for (const round of rounds) {
          if (round.op === 'advance') {
            clock.advance(round.ms);
          } else if (round.op === 'refund') {
            await memory.refund(`id-${round.id}`, { cost: round.cost });
            await (round.general ? general : lean).refund(`id-${round.id}`, { cost: round.cost });
          } else {
            const want = [];
            for (const call of round.calls) {
              want.push(shared(await memory[round.op](`id-${call.id}`, { cost: round.cost }), windows.length));
            }
            // Issued in order, decided concurrently: one identity's calls keep their order only
            // within one limiter, so each identity's calls go to one limiter per round.
            const byId = new Map<number, boolean>();
            for (const call of round.calls) if (!byId.has(call.id)) byId.set(call.id, call.general);
            const got = (
              await Promise.all(
                round.calls.map((call) =>
                  (byId.get(call.id) ? general : lean)[round.op](`id-${call.id}`, { cost: round.cost }),
                ),
              )
            ).map((result) => shared(result, windows.length));
            expect({ round, got }).toEqual({ round, got: want });
          }
        }
      }),
      { numRuns: Number(process.env.RUNS ?? 25) },
    );
  }, 120_000);
});
