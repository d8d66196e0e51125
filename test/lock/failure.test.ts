import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient, Lock, LockLostError, type RedscaleError } from '../../src/index.js';
import { quiet, randomPrefix, unhandledRejections } from '../harness/context.js';
import { RedisServer } from '../harness/index.js';

const rejections = unhandledRejections();

describe('Lock when Redis dies', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.dispose()));
  });

  it('withLock settles with a LockLostError carrying the Redis error, and locking works after a restart', async () => {
    const server = await RedisServer.start();
    servers.push(server);
    const redis = createClient({ url: server.url, onError: quiet });
    await redis.ping();
    const errors: RedscaleError[] = [];
    // Generous timings: on a loaded machine a first script load can take a good part of 100 ms.
    const lock = new Lock({
      redis,
      prefix: randomPrefix('kill'),
      ttl: 600,
      timeout: 250,
      onError: (error) => errors.push(error),
    });

    let sawAbort = false;
    const started = performance.now();
    const outcome = lock
      .withLock('job', async ({ signal }) => {
        // Work that honours the signal: it stops when the lock is lost.
        await new Promise<void>((resolve) => {
          signal.addEventListener('abort', () => {
            sawAbort = true;
            resolve();
          });
          setTimeout(() => void server.kill(), 50);
        });
        return 'finished';
      })
      .catch((error: unknown) => error);
    const error = await outcome;
    const elapsed = performance.now() - started;

    expect(sawAbort).toBe(true);
    expect(error).toBeInstanceOf(LockLostError);
    expect(error).toMatchObject({ code: 'ERR_LOCK_LOST', reason: 'expired', resource: 'job' });
    expect(['ERR_TIMEOUT', 'ERR_REDIS']).toContain(((error as LockLostError).cause as RedscaleError).code);
    // Lost once its validity ran out (~600 ms), not after ioredis' retries; a failed release adds ≤ 250 ms.
    expect(elapsed).toBeLessThan(600 + 250 + 500);
    expect(errors.length).toBeGreaterThan(0);

    // Redis down: acquiring fails with the Redis error, never a "busy" timeout.
    const down = await lock.acquire('job', { wait: '2s' }).catch((caught: unknown) => caught);
    expect(['ERR_TIMEOUT', 'ERR_REDIS']).toContain((down as RedscaleError).code);

    await server.restart();
    let handle: Awaited<ReturnType<Lock['acquire']>> | undefined;
    for (let i = 0; i < 50 && !handle; i++) handle = await lock.acquire('job').catch(() => undefined);
    expect(handle?.held).toBe(true);
    expect(await handle?.release()).toBe(true);
    redis.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(rejections.list).toEqual([]);
  });
});
