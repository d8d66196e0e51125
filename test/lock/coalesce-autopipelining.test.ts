import { afterAll, describe, expect, it } from 'vitest';
import { Lock } from '../../src/index.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * The lock coalescer's ordering claim ("ioredis keeps order on one connection") on a
 * client with `autoPipelining: true` (a documented createClient option; ioredis
 * `enableAutoPipelining`). ioredis defers a lone command to `setImmediate` to pipeline it with
 * others, but writes an explicit pipeline at `exec()`. The coalescer sends a lone call with
 * nothing in flight straight away (deferred by ioredis) and a flush of several entries as an
 * explicit pipeline (written at once), so a release sent alone is overtaken by the next turn's
 * pipelined acquisition of its resource, which finds it held. Not caused by the 16-call cap (a
 * flush at the end of the turn is a pipeline too), but the cap adds a flush written inside the
 * caller's own call.
 */
describe.each<[Topology, boolean]>([
  ['standalone', true],
  ['cluster', true],
  ['standalone', false],
  ['cluster', false],
])('lock calls on %s, autoPipelining %s', (topology, autoPipelining) => {
  const redis = connect(topology, { autoPipelining });
  const prefix = randomPrefix('r3-autopipe');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('a release sent alone, then a tryAcquire of its resource flushed in a pipeline, grants the second', async () => {
    const lock = new Lock({ redis, prefix, ttl: '5s', wait: 0 });
    for (const name of ['warm', 'x', 'y', 'z']) await (await lock.acquire(name)).release();
    const held = await lock.acquire('x');
    const z = await lock.acquire('z');
    // Out of the turn that answered those (a reply turn queues calls instead of sending them).
    await new Promise((resolve) => setImmediate(resolve));
    // Nothing in flight: the release goes alone (ioredis holds it until setImmediate).
    const released = held.release();
    // Queued behind it, flushed together at the turn's end as a pipeline: a run of two
    // acquisitions and a release of another resource.
    const again = lock.tryAcquire('x');
    const other = lock.tryAcquire('y');
    const releasedZ = z.release();
    expect(await released).toBe(true);
    expect(await releasedZ).toBe(true);
    const handle = await again;
    expect(handle).not.toBeNull();
    for (const h of [handle, await other]) await h?.release();
  });
});
