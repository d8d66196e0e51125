import { describe, expect, inject, it } from 'vitest';
import { runFixture } from '../fixtures/spawn.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

const PROCESSES = 4;
const ITERATIONS = 25;

describe.each<Topology>(['standalone', 'cluster'])('Lock across processes on %s', (topology) => {
  it(`${PROCESSES} processes × ${ITERATIONS} read-modify-writes: exact count, no overlap, rising fences`, async () => {
    const prefix = randomPrefix('mutex');
    const target = topology === 'cluster' ? { nodes: inject('clusterNodes') } : { url: inject('redisUrl') };
    const startAt = Date.now() + 2_500;
    const runs = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        runFixture<Array<{ fence: number; enter: string; exit: string }>>('lock-worker.ts', {
          ...target,
          prefix,
          iterations: ITERATIONS,
          startAt,
        }),
      ),
    );
    const redis = connect(topology);
    const count = Number(await redis.get(`${prefix}:counter`));
    await deletePrefix(redis, prefix);
    redis.disconnect();

    // Without the lock, concurrent read-modify-writes would lose increments.
    expect(count).toBe(PROCESSES * ITERATIONS);
    const sections = runs
      .flat()
      .map((section) => ({ fence: section.fence, enter: BigInt(section.enter), exit: BigInt(section.exit) }))
      .sort((a, b) => (a.enter < b.enter ? -1 : 1));
    expect(sections).toHaveLength(PROCESSES * ITERATIONS);
    for (let i = 1; i < sections.length; i++) {
      const previous = sections[i - 1]!;
      const current = sections[i]!;
      // Holders never overlap, and each holder's fencing token is higher than the last one's.
      expect(current.enter).toBeGreaterThanOrEqual(previous.exit);
      expect(current.fence).toBeGreaterThan(previous.fence);
    }
  }, 120_000);
});
