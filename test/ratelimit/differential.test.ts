import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BlockMode,
  fixedWindow,
  gcra,
  type LimitRule,
  RateLimiter,
  type RateLimitResult,
  slidingLog,
  slidingWindow,
} from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { testClock } from './support.js';

type Step =
  | { op: 'consume' | 'peek' | 'hit' | 'refund'; id: 'a' | 'b'; cost: number; upgraded?: boolean }
  | { op: 'advance'; ms: number }
  | { op: 'reset'; id: 'a' | 'b' }
  | { op: 'burst'; id: 'a' | 'b'; calls: number };

const ALGORITHMS = [
  'fixed',
  'first-hit',
  'first-hit-restart',
  'first-hit-backoff',
  'sliding',
  'log',
  'gcra',
  'gcra',
] as const;

const ruleArbitrary = (limit: fc.Arbitrary<number>, algorithms: readonly string[]) =>
  fc.record({
    algorithm: fc.constantFrom(...algorithms),
    limit,
    window: fc.constantFrom(100, 250, 1_000, 3_000),
    // GCRA only; rates whose interval is not a whole number of ms (3 per 1000 ms) included.
    burst: fc.integer({ min: 1, max: 12 }),
  });

const rulesArbitrary = (limit: fc.Arbitrary<number>, algorithms: readonly string[] = ALGORITHMS, minLength = 1) =>
  fc.uniqueArray(ruleArbitrary(limit, algorithms), {
    minLength,
    maxLength: 3,
    // Two first-hit windows of one length share a key, however they treat a hit over the limit.
    selector: (rule) => `${rule.algorithm.replace(/-(restart|backoff)$/, '')}${rule.window}`,
  });

const configArbitrary = fc.record({
  // Small limits reach refusals often; large ones let many calls land in one millisecond (the
  // test clock stands still between 'advance' steps), where a sliding log's entries must stay
  // distinct across refunds.
  rules: fc.oneof(
    { weight: 2, arbitrary: rulesArbitrary(fc.integer({ min: 1, max: 8 })) },
    { weight: 1, arbitrary: rulesArbitrary(fc.integer({ min: 10, max: 24 })) },
  ),
  blockFor: fc.constantFrom(0, 0, 200, 1_500),
  blockMode: fc.constantFrom<BlockMode>('until-room', 'exact'),
  // A second plan: the same algorithms and windows (so the same counters), larger numbers.
  upgrade: fc.constantFrom(2, 3),
});

type Config = {
  rules: Array<{ algorithm: string; limit: number; window: number; burst: number }>;
  blockFor: number;
  blockMode: BlockMode;
  upgrade: number;
};

/** Several fixed and sliding windows without a block: the shapes the lean multi-limit script decides. */
const windowsConfigArbitrary = fc.record({
  rules: fc.oneof(
    { weight: 2, arbitrary: rulesArbitrary(fc.integer({ min: 1, max: 8 }), ['fixed', 'sliding'], 2) },
    { weight: 1, arbitrary: rulesArbitrary(fc.integer({ min: 10, max: 24 }), ['fixed', 'sliding'], 2) },
  ),
  blockFor: fc.constant(0),
  blockMode: fc.constantFrom<BlockMode>('until-room', 'exact'),
  upgrade: fc.constantFrom(2, 3),
});

function stepsArbitrary(maxCost: number) {
  const id = fc.constantFrom<'a' | 'b'>('a', 'b');
  const cost = fc.integer({ min: 1, max: maxCost });
  return fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('consume' as const), id, cost }) },
      // The same identity on the other plan: counts carry over, limits change.
      {
        weight: 2,
        arbitrary: fc.record({ op: fc.constant('consume' as const), id, cost, upgraded: fc.constant(true) }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('peek' as const), id, cost }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('hit' as const), id, cost }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('refund' as const), id, cost }) },
      {
        weight: 1,
        arbitrary: fc.record({ op: fc.constant('refund' as const), id, cost, upgraded: fc.constant(true) }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), id }) },
      // Many calls in one millisecond (the test clock stands still between 'advance' steps).
      {
        weight: 2,
        arbitrary: fc.record({ op: fc.constant('burst' as const), id, calls: fc.integer({ min: 5, max: 15 }) }),
      },
      {
        weight: 4,
        arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2_000 }) }),
      },
    ),
    { minLength: 1, maxLength: 40 },
  );
}

function toRule(rule: { algorithm: string; limit: number; window: number; burst: number }): LimitRule {
  const options = { limit: rule.limit, window: rule.window };
  if (rule.algorithm === 'gcra') return gcra({ ...options, burst: rule.burst });
  return rule.algorithm === 'fixed'
    ? fixedWindow(options)
    : rule.algorithm.startsWith('first-hit')
      ? fixedWindow({
          ...options,
          anchor: 'first-hit',
          whenExceeded: rule.algorithm.endsWith('restart')
            ? 'restart'
            : rule.algorithm.endsWith('backoff')
              ? 'backoff'
              : 'keep',
        })
      : rule.algorithm === 'sliding'
        ? slidingWindow(options)
        : slidingLog(options);
}

/** Everything a caller can observe, minus who answered. */
function observable(result: RateLimitResult) {
  const { source: _source, ...rest } = result;
  return rest;
}

/** The most one call can cost: the smallest limit (a GCRA limit's burst). */
const capacity = (rule: { algorithm: string; limit: number; burst: number }) =>
  rule.algorithm === 'gcra' ? rule.burst : rule.limit;

/** `noHit`: a sliding log or a GCRA limit is there, which hit() refuses. */
async function apply(limiter: RateLimiter, step: Step, noHit: boolean, upgraded: LimitRule[]): Promise<unknown> {
  const plan = 'upgraded' in step && step.upgraded ? { limits: upgraded } : {};
  switch (step.op) {
    case 'consume':
    case 'peek':
      return observable(await limiter[step.op](step.id, { cost: step.cost, ...plan }));
    case 'hit':
      return noHit ? 'skipped' : observable(await limiter.hit(step.id, { cost: step.cost }));
    case 'refund':
      return limiter.refund(step.id, { cost: step.cost, ...plan });
    case 'reset':
      return limiter.reset(step.id);
    case 'burst': {
      const results = [];
      for (let i = 0; i < step.calls; i++) results.push(observable(await limiter.consume(step.id)));
      return results;
    }
    case 'advance':
      return undefined;
  }
}

describe.each<[Topology, number]>([
  ['standalone', 150],
  ['cluster', 40],
])('memory and Redis backends decide identically (%s)', (topology, runs) => {
  const redis = connect(topology);
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  /** Both backends, fed the same calls, answer the same. */
  const decideIdentically = (configs: fc.Arbitrary<Config>) =>
    fc.asyncProperty(
      configs.chain((config) => fc.tuple(fc.constant(config), stepsArbitrary(Math.min(...config.rules.map(capacity))))),
      async ([config, steps]) => {
        const clock = testClock();
        const limits = config.rules.map(toRule);
        const upgraded = config.rules.map((rule) =>
          toRule({ ...rule, limit: rule.limit * config.upgrade, burst: rule.burst * config.upgrade }),
        );
        const noHit = limits.some((rule) => rule.algorithm === 'sliding-log' || rule.algorithm === 'gcra');
        const common = {
          limits,
          blockFor: config.blockFor,
          blockMode: config.blockMode,
          clock: clock.now,
          localDenyCache: false as const,
          // A loaded test machine must not turn a slow answer into a fallback.
          timeout: '10s' as const,
        };
        const prefix = randomPrefix('diff');
        prefixes.push(prefix);
        const memory = new RateLimiter({ ...common, prefix });
        const onRedis = new RateLimiter({ ...common, prefix, redis });
        for (const step of steps) {
          if (step.op === 'advance') clock.advance(step.ms);
          const [fromMemory, fromRedis] = [
            await apply(memory, step, noHit, upgraded),
            await apply(onRedis, step, noHit, upgraded),
          ];
          expect(fromRedis).toEqual(fromMemory);
        }
      },
    );

  it(`on ${runs} random sequences of calls, costs and clock jumps`, async () => {
    await fc.assert(decideIdentically(configArbitrary), {
      numRuns: runs,
      // Known hard cases first, then random ones. A sliding log refunded within a busy
      // millisecond must not hand a later call an entry that already exists (it would be
      // admitted without being counted).
      examples: [
        [
          [
            {
              rules: [{ algorithm: 'log', limit: 20, window: 1_000, burst: 1 }],
              blockFor: 0,
              blockMode: 'until-room',
              upgrade: 2,
            },
            [
              { op: 'burst', id: 'a', calls: 12 },
              { op: 'refund', id: 'a', cost: 1 },
              { op: 'burst', id: 'a', calls: 3 },
              { op: 'refund', id: 'a', cost: 3 },
              { op: 'burst', id: 'a', calls: 5 },
            ],
          ],
        ],
        // A GCRA interval of 333⅓ ms beside a window, around a block, refunds and a full refill.
        [
          [
            {
              rules: [
                { algorithm: 'gcra', limit: 3, window: 1_000, burst: 5 },
                { algorithm: 'fixed', limit: 8, window: 3_000, burst: 1 },
              ],
              blockFor: 200,
              blockMode: 'exact',
              upgrade: 3,
            },
            [
              { op: 'burst', id: 'a', calls: 7 },
              { op: 'advance', ms: 333 },
              { op: 'consume', id: 'a', cost: 1 },
              { op: 'advance', ms: 1 },
              { op: 'consume', id: 'a', cost: 2, upgraded: true },
              { op: 'refund', id: 'a', cost: 3 },
              { op: 'consume', id: 'b', cost: 5 },
              { op: 'advance', ms: 1_667 },
              { op: 'peek', id: 'a', cost: 5 },
              { op: 'consume', id: 'b', cost: 1 },
            ],
          ],
        ],
        // A backoff lengthened a first-hit window, a refund brought the count back under the
        // limit: the admitted call reports the lengthened window's end (found by this property).
        [
          [
            {
              rules: [{ algorithm: 'first-hit-backoff', limit: 10, window: 3_000, burst: 12 }],
              blockFor: 200,
              blockMode: 'until-room',
              upgrade: 2,
            },
            [
              { op: 'consume', id: 'b', cost: 4 },
              { op: 'hit', id: 'b', cost: 8 },
              { op: 'refund', id: 'b', cost: 3, upgraded: true },
              { op: 'burst', id: 'b', calls: 5 },
            ],
          ],
        ],
      ],
    });
  });

  it(`on ${runs / 2} random sequences over several fixed and sliding windows (the lean multi-limit script)`, async () => {
    await fc.assert(decideIdentically(windowsConfigArbitrary), { numRuns: runs / 2 });
  });
});
