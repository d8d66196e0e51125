import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lock, LockNotReplicatedError, Semaphore } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { type PrimaryWithReplica, startPrimaryWithReplica, withFirstWaitCut } from '../harness/replica.js';

/**
 * A primary with one replica (no Sentinel): a grant is trusted only when `WAIT` on the socket that
 * carried it counts the replica.
 */
describe('Lock and Semaphore replicas on a primary with one replica', () => {
  let servers: PrimaryWithReplica;
  let redis: Redis;

  beforeAll(async () => {
    servers = await startPrimaryWithReplica();
    redis = servers.redis;
  }, 30_000);

  afterAll(() => servers?.dispose());

  it('a lock resolves once the replica has the grant', async () => {
    const locks = new Lock({ redis, prefix: randomPrefix('lock-replica'), replicas: 1 });
    const held = await locks.acquire('r');
    expect(held.held).toBe(true);
    await held.release();
  });

  it('a lock WAIT resent on a new connection after a reconnection proves nothing: the grant is given back', async () => {
    const locks = new Lock({ redis, prefix: randomPrefix('lock-replica'), replicas: 1, wait: 0 });
    await (await locks.acquire('warm')).release();
    const { dropped, outcome } = await withFirstWaitCut(() => locks.acquire('cut'));
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
    const { dropped, outcome } = await withFirstWaitCut(() => permits.acquire('cut'));
    expect(dropped).toBe(true);
    expect(outcome).toMatchObject({ code: 'ERR_NOT_REPLICATED', acknowledged: 0 });
    const again = await permits.acquire('cut');
    expect(again.held).toBe(true);
    await again.release();
  });
});
