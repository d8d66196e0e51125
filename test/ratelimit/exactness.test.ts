import { describe, expect, inject, it } from 'vitest';
import { runFixture } from '../fixtures/spawn.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

interface Report {
  allowed: number;
  refused: number;
  sources: string[];
  errors: string[];
}

const PROCESSES = 4;
const CALLS = 500;
const LIMIT = 137;

const ALGORITHMS = ['fixed', 'sliding', 'log', 'gcra'] as const;

describe.each<Topology>(['standalone', 'cluster'])(`across ${PROCESSES} processes on %s`, (topology) => {
  it(`admits exactly the limit of ${LIMIT} among ${PROCESSES} × ${CALLS} concurrent calls, for each algorithm at once`, async () => {
    // A day-long window: the burst is inside one window unless it straddles UTC midnight.
    const toMidnight = 86_400_000 - (Date.now() % 86_400_000);
    if (toMidnight < 30_000) await new Promise((resolve) => setTimeout(resolve, toMidnight + 1_000));
    const prefix = randomPrefix('burst');
    const target = topology === 'cluster' ? { nodes: inject('clusterNodes') } : { url: inject('redisUrl') };
    const startAt = Date.now() + 2_500;
    const reports = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        runFixture<Record<(typeof ALGORITHMS)[number], Report>>('rate-limit-burst.ts', {
          ...target,
          prefix,
          algorithms: ALGORITHMS,
          limit: LIMIT,
          window: '1d',
          calls: CALLS,
          startAt,
        }),
      ),
    );
    const redis = connect(topology);
    await deletePrefix(redis, prefix);
    redis.disconnect();

    for (const algorithm of ALGORITHMS) {
      const of = reports.map((report) => report[algorithm]);
      const allowed = of.reduce((sum, report) => sum + report.allowed, 0);
      const refused = of.reduce((sum, report) => sum + report.refused, 0);
      expect(of.flatMap((report) => report.errors)).toEqual([]);
      expect(allowed + refused).toBe(PROCESSES * CALLS);
      // Exact for all four: the sliding window's estimate is exact within one window when the
      // previous window is empty (its documented worst case, 2 × limit, needs a busy previous
      // window); GCRA's burst is the limit, and a day-long window refills one unit per 10 minutes.
      expect({ algorithm, allowed }).toEqual({ algorithm, allowed: LIMIT });
      expect(of.flatMap((report) => report.sources).every((source) => source === 'redis' || source === 'local')).toBe(
        true,
      );
    }
  }, 60_000);
});
