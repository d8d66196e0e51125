import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteBuffer, WriteBufferNotReplicatedError } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { type PrimaryWithReplica, startPrimaryWithReplica, withFirstWaitCut } from '../harness/replica.js';
import { rawCommand } from '../harness/resp.js';

/**
 * A primary with one replica (no Sentinel): `WAIT` counts the replica, and only for the socket
 * that carried the items.
 */
describe('WriteBuffer replicas on a primary with one replica', () => {
  let servers: PrimaryWithReplica;
  let redis: Redis;

  beforeAll(async () => {
    servers = await startPrimaryWithReplica();
    redis = servers.redis;
  }, 30_000);

  afterAll(() => servers?.dispose());

  it('resolves once the replica acknowledged, and the replica has the item', async () => {
    const buffer = new WriteBuffer({ redis, prefix: randomPrefix('replica'), name: 'w', replicas: 1 });
    const [id] = await buffer.enqueueMany([{ n: 1 }], { ids: ['on-replica'] });
    expect(id).toBe('on-replica');
    const stream = buffer.keys[0]?.stream as string;
    // WAIT returned 1: the replica has applied the write already.
    const onReplica = await rawCommand(servers.replica.port, `XLEN ${stream}`, 1_000);
    expect(onReplica.trim()).toBe(':1');
    // Asking for more replicas than exist rejects, naming what was acknowledged.
    const greedy = new WriteBuffer({
      redis,
      prefix: randomPrefix('replica'),
      name: 'w',
      replicas: 2,
      replicationTimeout: 30,
    });
    await expect(greedy.enqueue({ n: 2 })).rejects.toMatchObject({
      code: 'ERR_NOT_REPLICATED',
      required: 2,
      acknowledged: 1,
    });
  });

  it('a WAIT resent on a new connection after a reconnection proves nothing: rejects', async () => {
    const buffer = new WriteBuffer({ redis, prefix: randomPrefix('replica'), name: 'w', replicas: 1 });
    await buffer.enqueue({ warm: true });
    const { dropped, outcome: error } = await withFirstWaitCut(() => buffer.enqueue({ n: 1 }, { id: 'cut' }));
    expect(dropped).toBe(true);
    expect(error).toBeInstanceOf(WriteBufferNotReplicatedError);
    expect(error).toMatchObject({ ids: ['cut'], acknowledged: 0 });
    // After the reconnection, enqueues resolve again.
    await expect(buffer.enqueue({ n: 2 })).resolves.toMatch(/^[0-9a-f-]{36}$/);
  });
});
