import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lock, LockNotReplicatedError, Semaphore } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { RedisServer } from '../harness/redis-server.js';
import { rawCommand } from '../harness/resp.js';

/**
 * A primary with one replica (no Sentinel): a grant is trusted only when `WAIT` on the socket that
 * carried it counts the replica.
 */
describe('Lock and Semaphore replicas on a primary with one replica', () => {
  let primary: RedisServer;
  let replica: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    primary = await RedisServer.start();
    replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    await waitUntil(
      'the replica to be in sync',
      async () => (await rawCommand(replica.port, 'INFO replication', 1_000)).includes('master_link_status:up'),
      20_000,
    );
    redis = new Redis({ port: primary.port, lazyConnect: true, maxRetriesPerRequest: 3 });
    await redis.connect();
  }, 30_000);

  afterAll(async () => {
    redis?.disconnect();
    await Promise.all([replica?.dispose(), primary?.dispose()]);
  });

  /** Runs `fn` while the first WAIT sent drops its connection, so ioredis resends it on a new one. */
  async function withWaitCut<T>(fn: () => Promise<T>): Promise<{ dropped: boolean; outcome: T | unknown }> {
    const original = Redis.prototype.sendCommand;
    let dropped = false;
    Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
      if (command.name === 'wait' && !dropped) {
        dropped = true;
        this.stream.destroy();
      }
      return original.call(this, command, ...rest);
    } as typeof original;
    try {
      const outcome = await fn().catch((caught: unknown) => caught);
      return { dropped, outcome };
    } finally {
      Redis.prototype.sendCommand = original;
    }
  }

  it('a lock resolves once the replica has the grant', async () => {
    const locks = new Lock({ redis, prefix: randomPrefix('lock-replica'), replicas: 1 });
    const held = await locks.acquire('r');
    expect(held.held).toBe(true);
    await held.release();
  });

  it('a lock WAIT resent on a new connection after a reconnection proves nothing: the grant is given back', async () => {
    const locks = new Lock({ redis, prefix: randomPrefix('lock-replica'), replicas: 1, wait: 0 });
    await (await locks.acquire('warm')).release();
    const { dropped, outcome } = await withWaitCut(() => locks.acquire('cut'));
    expect(dropped).toBe(true);
    expect(outcome).toBeInstanceOf(LockNotReplicatedError);
    expect(outcome).toMatchObject({ required: 1, acknowledged: 0 });
    // The grant was given back: the lock is free, and taken again once the link is back.
    const again = await locks.acquire('cut');
    expect(again.held).toBe(true);
    await again.release();
  });

  it('a semaphore WAIT resent on a new connection proves nothing either', async () => {
    const permits = new Semaphore({ redis, prefix: randomPrefix('sem-replica'), limit: 1, replicas: 1, wait: 0 });
    await (await permits.acquire('warm')).release();
    const { dropped, outcome } = await withWaitCut(() => permits.acquire('cut'));
    expect(dropped).toBe(true);
    expect(outcome).toMatchObject({ code: 'ERR_NOT_REPLICATED', acknowledged: 0 });
    const again = await permits.acquire('cut');
    expect(again.held).toBe(true);
    await again.release();
  });
});
