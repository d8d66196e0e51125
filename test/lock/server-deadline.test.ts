import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerClocks } from '../../src/common/server-clock.js';
import { GRANTED, runBeforeDeadline } from '../../src/lock/timed-script.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

/**
 * The deadline a lock script receives is the caller's, in the server's time as this process
 * believes it. A wrong belief (no sample yet and a skewed wall clock, or a server clock that
 * jumped) must cost one retry, never a refusal reported as a failure nor a late grant.
 */
describe.each<Topology>(['standalone', 'cluster'])('lock scripts under a server deadline, on %s', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('deadline');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('a clock believed a minute behind gets "too late", learns the server time from the reply and succeeds on the retry', async () => {
    const key = `${prefix}:lock:{skewed}`;
    const clocks = new ServerClocks(redis);
    await redis.exists(key); // connect to the key's node, so the count below is the script's alone
    clocks.of(key).learn(Date.now() - 60_000, performance.now());
    let status: number | undefined;
    const log = await countCommands(async () => {
      const reply = await runBeforeDeadline(
        redis,
        clocks,
        'lockAcquire',
        [key, `${key}:fence`],
        ['token', 5_000],
        performance.now() + 1_000,
        1_000,
        'lock acquire',
        {},
      );
      status = reply.status;
    });
    expect(status).toBe(GRANTED);
    expect(log.count).toBe(2);
    // The first run changed nothing; the second took the lock. The clock is now right.
    expect(await redis.get(key)).toBe('token');
    expect(Math.abs(clocks.of(key).serverTimeAt(performance.now()) - Date.now())).toBeLessThan(1_000);
  });

  it('a deadline already past by the server clock is refused, and reported as a timeout', async () => {
    const key = `${prefix}:lock:{past}`;
    const clocks = new ServerClocks(redis);
    await redis.exists(key);
    // A clock that keeps believing the server an hour behind, whatever the replies say, puts
    // every deadline in the server's past: a server clock that jumped, run after run.
    const clock = clocks.of(key);
    const learn = clock.learn.bind(clock);
    clock.learn = () => learn(Date.now() - 3_600_000, performance.now());
    clock.learn(0);
    let error: unknown;
    const log = await countCommands(async () => {
      error = await runBeforeDeadline(
        redis,
        clocks,
        'lockAcquire',
        [key, `${key}:fence`],
        ['token', 5_000],
        performance.now() + 1_000,
        1_000,
        'lock acquire',
        { resource: 'past' },
      ).catch((caught: unknown) => caught);
    });
    // Tried three times (the first, then twice with what the replies taught), then gave up.
    expect(log.count).toBe(3);
    expect(error).toMatchObject({ code: 'ERR_TIMEOUT', context: { resource: 'past' } });
    expect(await redis.exists(key, `${key}:fence`)).toBe(0);
  });
});
