import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteBuffer, WriteBufferNotReplicatedError } from '../../src/index.js';
import { randomPrefix } from '../harness/context.js';
import { waitUntil } from '../harness/index.js';
import { RedisServer } from '../harness/redis-server.js';
import { rawCommand } from '../harness/resp.js';

/**
 * A primary with one replica (no Sentinel): `WAIT` counts the replica, and only for the socket
 * that carried the items.
 */
describe('WriteBuffer replicas on a primary with one replica', () => {
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

  it('resolves once the replica acknowledged, and the replica has the item', async () => {
    const buffer = new WriteBuffer({ redis, prefix: randomPrefix('replica'), name: 'w', replicas: 1 });
    const [id] = await buffer.enqueueMany([{ n: 1 }], { ids: ['on-replica'] });
    expect(id).toBe('on-replica');
    const stream = buffer.keys[0]?.stream as string;
    // WAIT returned 1: the replica has applied the write already.
    const onReplica = await rawCommand(replica.port, `XLEN ${stream}`, 1_000);
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
    // Drop the connection just as the WAIT is sent: ioredis resends it on the new connection, where
    // it would count that connection's writes (none) and answer 1 at once.
    const original = Redis.prototype.sendCommand;
    let dropped = false;
    Redis.prototype.sendCommand = function (this: Redis, command, ...rest) {
      if (command.name === 'wait' && !dropped) {
        dropped = true;
        this.stream.destroy();
      }
      return original.call(this, command, ...rest);
    } as typeof original;
    let error: unknown;
    try {
      error = await buffer.enqueue({ n: 1 }, { id: 'cut' }).catch((caught: unknown) => caught);
    } finally {
      Redis.prototype.sendCommand = original;
    }
    expect(dropped).toBe(true);
    expect(error).toBeInstanceOf(WriteBufferNotReplicatedError);
    expect(error).toMatchObject({ ids: ['cut'], acknowledged: 0 });
    // After the reconnection, enqueues resolve again.
    await expect(buffer.enqueue({ n: 2 })).resolves.toMatch(/^[0-9a-f-]{36}$/);
  });
});
