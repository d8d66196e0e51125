import { Redis } from 'ioredis';
import { waitUntil } from './index.js';
import { RedisServer } from './redis-server.js';
import { rawCommand } from './resp.js';

/** A primary with one replica in sync (no Sentinel), and a plain ioredis client on the primary. */
export interface PrimaryWithReplica {
  primary: RedisServer;
  replica: RedisServer;
  redis: Redis;
  /** Disconnects the client and stops both servers. */
  dispose(): Promise<void>;
}

/** Starts a primary and a replica on free ports and waits until the replica's link is up. */
export async function startPrimaryWithReplica(): Promise<PrimaryWithReplica> {
  const primary = await RedisServer.start();
  const replica = await RedisServer.start({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  await waitUntil(
    'the replica to be in sync',
    async () => (await rawCommand(replica.port, 'INFO replication', 1_000)).includes('master_link_status:up'),
    20_000,
  );
  const redis = new Redis({ port: primary.port, lazyConnect: true, maxRetriesPerRequest: 3 });
  await redis.connect();
  return {
    primary,
    replica,
    redis,
    async dispose() {
      redis.disconnect();
      await Promise.all([replica.dispose(), primary.dispose()]);
    },
  };
}

/**
 * Runs `fn` while the first `WAIT` any ioredis client sends drops its connection just as it goes
 * out: ioredis resends it on the new connection, where it would count that connection's writes
 * (none) and answer at once. Resolves what `fn` resolved or rejected with, and whether the cut happened.
 */
export async function withFirstWaitCut(fn: () => Promise<unknown>): Promise<{ dropped: boolean; outcome: unknown }> {
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
