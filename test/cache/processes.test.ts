import { describe, expect, inject, it } from 'vitest';
import { runFixture } from '../fixtures/spawn.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { cacheFactory } from './support.js';

const PROCESSES = 4;
const CALLS = 100;

describe.each<Topology>(['standalone', 'cluster'])('Cache across processes on %s', (topology) => {
  const factory = cacheFactory(topology);
  const target = () => (topology === 'cluster' ? { nodes: inject('clusterNodes') } : { url: inject('redisUrl') });

  it(`a cold key hit by ${PROCESSES} processes × ${CALLS} concurrent getOrSet loads exactly once`, async () => {
    const prefix = randomPrefix('stampede');
    const reports = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        runFixture<{ same: number; value: unknown; stats: { lockWaits: number; loads: number }; errors: string[] }>(
          'cache-stampede.ts',
          {
            ...target(),
            prefix,
            calls: CALLS,
            loaderMs: 200,
            processes: PROCESSES,
          },
        ),
      ),
    );
    const redis = connect(topology);
    const runs = Number(await redis.get(`${prefix}:loader-runs`));
    await deletePrefix(redis, prefix);
    redis.disconnect();

    expect(runs, `Redis errors: ${JSON.stringify(reports.map((report) => report.errors))}`).toBe(1);
    // Every caller in every process got the one loaded value.
    for (const report of reports) expect(report.same).toBe(CALLS);
    expect(new Set(reports.map((report) => JSON.stringify(report.value))).size).toBe(1);
    expect(reports.reduce((sum, report) => sum + report.stats.loads, 0)).toBe(1);
    expect(reports.reduce((sum, report) => sum + report.stats.lockWaits, 0)).toBe(PROCESSES - 1);
  }, 60_000);

  it('a tag invalidated by another process makes this process’s next read (L1 on) a miss', async () => {
    const prefix = randomPrefix('xproc');
    const cache = await factory.make({ prefix, l1: { maxEntries: 100 } });
    await cache.getOrSet('k', () => 'cached', { tags: ['T'] });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await cache.get('k');
    expect((await countCommands(() => cache.get('k'))).count).toBe(0); // served from L1
    await runFixture('cache-invalidate.ts', { ...target(), prefix, tags: ['T'] });
    // The other process has published and exited; the bus delivers within milliseconds.
    const started = performance.now();
    await waitUntil('the L1 entry to be invalidated', async () => (await cache.get('k')) === undefined, 1_000);
    expect(performance.now() - started).toBeLessThan(1_000);
  }, 30_000);
});
