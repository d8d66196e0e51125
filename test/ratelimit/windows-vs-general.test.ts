import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { RedisLike } from '../../src/index.js';
import { evalScript } from '../../src/scripts/eval-script.js';
import { connect, deletePrefix, randomPrefix } from '../harness/context.js';

/**
 * The lean multi-limit script (ratelimit-windows.lua) must decide exactly as the general script
 * (ratelimit.lua with no block), on the same keys and state, so that instances on either can share
 * an identity's counters. Both scripts get the same ARGV (the general one with blockFor 0), on
 * twin key sets, and every reply and every key's content must match; a third key set is driven by
 * both scripts in turn (a rolling upgrade) and must match too.
 */

type Limit = { code: 'f' | 's'; window: number; limit: number };

const WINDOWS = [100, 250, 1_000, 1_500, 3_000, 60_000];

const limitsArbitrary = fc.uniqueArray(
  fc.record({
    code: fc.constantFrom<'f' | 's'>('f', 's'),
    window: fc.constantFrom(...WINDOWS),
    limit: fc.integer({ min: 1, max: 12 }),
  }),
  { minLength: 2, maxLength: 5, selector: (limit) => `${limit.code}${limit.window}` },
);

const stepsArbitrary = fc.array(
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        op: fc.constantFrom<'c' | 'p' | 'h'>('c', 'c', 'c', 'p', 'h'),
        // A batch: identities 0..2, the same one possibly several times.
        ids: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 6 }),
        cost: fc.integer({ min: 1, max: 4 }),
        plan: fc.constantFrom<0 | 1>(0, 0, 1),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant('refund' as const),
        id: fc.integer({ min: 0, max: 2 }),
        cost: fc.integer({ min: 1, max: 3 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), id: fc.integer({ min: 0, max: 2 }) }) },
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant('advance' as const),
        // Often exactly onto window boundaries (multiples of 50 ms).
        ms: fc.oneof(
          fc.integer({ min: 0, max: 2_000 }),
          fc.integer({ min: 0, max: 40 }).map((k) => k * 50),
        ),
      }),
    },
  ),
  { minLength: 1, maxLength: 40 },
);

const FAR = 10 * 365 * 86_400_000;

describe('ratelimit-windows.lua and ratelimit.lua (no block) decide identically', () => {
  const redis: RedisLike = connect('standalone');
  const base = randomPrefix('wvg');
  let runs = 0;
  afterAll(async () => {
    await deletePrefix(redis, base);
    redis.disconnect();
  }, 120_000);

  const keysOf = (root: string, limits: Limit[], id: number) =>
    limits.map((l) => `${root}:{id${id}}:${l.code}${l.window}`);

  async function snapshot(root: string, limits: Limit[]): Promise<unknown> {
    const out: Record<string, unknown> = {};
    for (let id = 0; id < 3; id++) {
      for (const key of keysOf(root, limits, id)) {
        out[key.slice(root.length)] = await redis.hgetall(key);
      }
    }
    return out;
  }

  /** The general script's reply laid flat (a batch: its identities' arrays end to end). */
  function flatten(reply: unknown, ids: number): unknown {
    if (!Array.isArray(reply)) return reply;
    if (ids === 1) return reply;
    return (reply as unknown[][]).flat();
  }

  it('on every step, on twin keys and on keys both scripts share', async () => {
    await fc.assert(
      fc.asyncProperty(
        limitsArbitrary,
        fc.integer({ min: 2, max: 3 }),
        stepsArbitrary,
        async (limits, factor, steps) => {
          const prefix = `${base}:${runs++}`;
          const general = `${prefix}:g`;
          const lean = `${prefix}:w`;
          const shared = `${prefix}:s`;
          // A second plan: the same windows (so the same keys), other limits.
          const plans = [limits, limits.map((l) => ({ ...l, limit: l.limit * factor }))];
          const smallest = Math.min(...limits.map((l) => l.limit));
          let now = Math.ceil(Date.now() / 86_400_000) * 86_400_000;
          let turn = 0;
          for (const step of steps) {
            if (step.op === 'advance') {
              now += step.ms;
              continue;
            }
            if (step.op === 'reset') {
              for (const root of [general, lean, shared]) await redis.del(...keysOf(root, limits, step.id));
              continue;
            }
            if (step.op === 'refund') {
              const replies = [];
              for (const root of [general, lean, shared]) {
                replies.push(
                  await evalScript(redis, 'ratelimitRefund', keysOf(root, limits, step.id), [
                    now + FAR,
                    step.cost,
                    now,
                    ...limits.map((l) => l.limit),
                  ]),
                );
              }
              expect(replies[1]).toEqual(replies[0]);
              expect(replies[2]).toEqual(replies[0]);
              continue;
            }
            const plan = plans[step.plan] as Limit[];
            const cost = Math.min(step.cost, smallest);
            const op = `${step.op}${cost}`;
            const shapes: Array<string | number> = [];
            for (const l of plan) shapes.push(`${l.code}${l.window}`, l.limit);
            const keys = (root: string) => step.ids.flatMap((id) => keysOf(root, plan, id));
            const generalArgs = [now + FAR, op, 0, 'r', now, ...shapes];
            const leanArgs = [now + FAR, op, now, ...shapes];
            const fromGeneral = flatten(
              await evalScript(redis, 'ratelimit', keys(general), generalArgs),
              step.ids.length,
            );
            const fromLean = await evalScript(redis, 'ratelimitWindows', keys(lean), leanArgs);
            expect({ step, reply: fromLean }).toEqual({ step, reply: fromGeneral });
            // Shared keys: the scripts take turns, as instances of two versions would.
            turn++;
            const fromShared =
              turn % 2 === 0
                ? flatten(await evalScript(redis, 'ratelimit', keys(shared), generalArgs), step.ids.length)
                : await evalScript(redis, 'ratelimitWindows', keys(shared), leanArgs);
            expect({ step, reply: fromShared }).toEqual({ step, reply: fromGeneral });
            const want = await snapshot(general, limits);
            expect(await snapshot(lean, limits)).toEqual(want);
            expect(await snapshot(shared, limits)).toEqual(want);
          }
        },
      ),
      { numRuns: Number(process.env.RUNS ?? 120) },
    );
  }, 240_000);
});
