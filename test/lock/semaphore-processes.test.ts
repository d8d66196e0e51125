import { describe, expect, inject, it } from 'vitest';
import { runFixture } from '../fixtures/spawn.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const PROCESSES = 4;
const ITERATIONS = 12;
const LIMIT = 2;

interface Run {
  mostAtOnce: number;
  sections: Array<{ fence: number; enter: string; exit: string }>;
}

describe.each<[Topology, boolean]>([
  ['standalone', false],
  ['cluster', true],
])('Semaphore across processes on %s (fair: %s)', (topology, fair) => {
  it(`${PROCESSES} processes × ${ITERATIONS} sections with limit ${LIMIT}: never more than ${LIMIT} inside at once`, async () => {
    const prefix = randomPrefix('semaphore');
    const target = topology === 'cluster' ? { nodes: inject('clusterNodes') } : { url: inject('redisUrl') };
    const runs = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        runFixture<Run>('lock-semaphore-worker.ts', {
          ...target,
          prefix,
          iterations: ITERATIONS,
          limit: LIMIT,
          fair,
          processes: PROCESSES,
        }),
      ),
    );
    const redis = connect(topology);
    await deletePrefix(redis, prefix);
    redis.disconnect();

    // Redis' own count of holders inside their sections never went past the limit...
    expect(Math.max(...runs.map((run) => run.mostAtOnce)), JSON.stringify(runs.map((run) => run.mostAtOnce))).toBe(
      LIMIT,
    );
    // ...and neither did the sections' overlap on the host's monotonic clock.
    const sections = runs.flatMap((run) => run.sections);
    expect(sections).toHaveLength(PROCESSES * ITERATIONS);
    const events = sections
      .flatMap((section) => [
        { at: BigInt(section.enter), delta: 1 },
        { at: BigInt(section.exit), delta: -1 },
      ])
      .sort((a, b) => (a.at === b.at ? a.delta - b.delta : a.at < b.at ? -1 : 1));
    let inside = 0;
    let most = 0;
    for (const event of events) {
      inside += event.delta;
      most = Math.max(most, inside);
    }
    expect(most).toBeLessThanOrEqual(LIMIT);
    expect(new Set(sections.map((section) => section.fence)).size).toBe(sections.length);
  }, 120_000);
});
