import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { addressOf, nodeOf } from '../../src/client/cluster.js';
import { InvalidOptionError, Lock, LockNotReplicatedError, Semaphore } from '../../src/index.js';
import { countCommands } from '../harness/command-counter.js';
import { connect, deletePrefix, randomPrefix, type Topology } from '../harness/context.js';

// The shared servers have no replicas: asking for one must refuse the grant and give it back.
// (That a replica's acknowledgement is counted, and a replicated grant survives a failover, is
// proven on a real Sentinel set in test/ha/sentinel-failover.test.ts.)
describe.each<Topology>(['standalone', 'cluster'])('replicas option on %s without replicas', (topology) => {
  const redis = connect(topology);
  const prefix = randomPrefix('replicas');
  afterAll(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  it('Lock: rejects with LockNotReplicatedError after replicationTimeout and leaves the lock free', async () => {
    const lock = new Lock({ redis, prefix, replicas: 1, replicationTimeout: 50 });
    const error = await lock.acquire('r').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockNotReplicatedError);
    expect(error).toMatchObject({ code: 'ERR_NOT_REPLICATED', resource: 'r', required: 1, acknowledged: 0 });
    expect((error as Error).message).toMatch(/only 0 of the 1 replica .* within 50ms; it was released/);
    // The grant was given back: a lock that does not wait for replicas takes it at once.
    const plain = new Lock({ redis, prefix, wait: '1s' });
    const handle = await plain.tryAcquire('r');
    expect(handle).not.toBeNull();
    await handle?.release();
    // withLock does not run the function.
    let ran = false;
    await expect(
      lock.withLock('r', () => {
        ran = true;
      }),
    ).rejects.toBeInstanceOf(LockNotReplicatedError);
    expect(ran).toBe(false);
  });

  it('Lock: acquireAll across slots waits on each slot’s master and gives every part back', async () => {
    const lock = new Lock({ redis, prefix, replicas: 1, replicationTimeout: 20 });
    await expect(lock.acquireAll(['a', 'b', 'c'])).rejects.toBeInstanceOf(LockNotReplicatedError);
    const plain = new Lock({ redis, prefix, wait: '1s' });
    const all = await plain.tryAcquireAll(['a', 'b', 'c']);
    expect(all).not.toBeNull();
    await all?.release();
  });

  it('sends WAIT on the connection that carried the grant: the master of each slot the grant spans', async () => {
    const lock = new Lock({ redis, prefix, replicas: 1, replicationTimeout: 20 });
    const waitedOn: string[] = [];
    const original = Redis.prototype.sendCommand;
    Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
      if (command.name === 'wait') waitedOn.push(addressOf(this));
      return original.call(this, command, ...rest);
    } as typeof original;
    try {
      await expect(lock.acquireAll(['x', 'y', 'z'])).rejects.toBeInstanceOf(LockNotReplicatedError);
    } finally {
      Redis.prototype.sendCommand = original;
    }
    const owners = ['x', 'y', 'z'].map((resource) => nodeOf(redis, `${prefix}:lock:{${resource}}`));
    if (topology === 'standalone') expect(waitedOn).toHaveLength(1);
    else expect(waitedOn.sort()).toEqual(owners.sort());
  });

  it('Semaphore: rejects with LockNotReplicatedError and gives the permits back', async () => {
    const semaphore = new Semaphore({ redis, prefix, limit: 1, replicas: 1, replicationTimeout: 20 });
    await expect(semaphore.acquire('s')).rejects.toBeInstanceOf(LockNotReplicatedError);
    const plain = new Semaphore({ redis, prefix, limit: 1 });
    const handle = await plain.tryAcquire('s');
    expect(handle).not.toBeNull();
    await handle?.release();
  });

  it('replicas: 0 (the default) sends no WAIT: acquiring stays one round trip', async () => {
    const lock = new Lock({ redis, prefix });
    await (await lock.acquire('warm')).release();
    let handle: Awaited<ReturnType<Lock['acquire']>> | undefined;
    const counted = await countCommands(async () => {
      handle = await lock.acquire('one');
    });
    expect(counted.names).not.toContain('wait');
    expect(counted.count).toBe(1);
    await handle?.release();
  });
});

describe('replicas options', () => {
  const redis = connect('standalone');
  afterAll(() => redis.disconnect());

  it('refuses a bad replicas or replicationTimeout, naming the option', () => {
    expect(() => new Lock({ redis, replicas: -1 })).toThrow(InvalidOptionError);
    expect(() => new Lock({ redis, replicas: 1.5 })).toThrow(/"replicas"/);
    expect(() => new Semaphore({ redis, limit: 1, replicas: 101 })).toThrow(/"replicas"/);
    expect(() => new Lock({ redis, replicationTimeout: 0 })).toThrow(/"replicationTimeout"/);
  });
});
