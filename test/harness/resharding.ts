import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RedisCluster } from './cluster.js';
import { quiet } from './context.js';

/** A Redis Cluster node, addressed directly for resharding. */
export interface ClusterNode {
  id: string;
  port: number;
  admin: Redis;
}

/** An admin connection to each of the cluster's servers, with its node id (close them with `admin.disconnect()`). */
export function clusterNodes(cluster: RedisCluster): Promise<ClusterNode[]> {
  return Promise.all(
    cluster.servers.map(async (server) => {
      const admin = new Redis({ port: server.port, lazyConnect: true });
      admin.on('error', quiet);
      return { id: (await admin.call('CLUSTER', 'MYID')) as string, port: server.port, admin };
    }),
  );
}

/**
 * Moves `slot` from `from` to `to` as `redis-cli --cluster reshard` does (IMPORTING, MIGRATING,
 * MIGRATE key by key, SETSLOT NODE), one key at a time with a pause, so load runs against the slot
 * while it is half moved (ASK redirections, TRYAGAIN for scripts whose keys are split) and after
 * (MOVED). Returns how many keys moved.
 */
export async function moveSlot(slot: number, from: ClusterNode, to: ClusterNode, pauseMs = 15): Promise<number> {
  await to.admin.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
  await from.admin.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
  let moved = 0;
  for (;;) {
    const keys = (await from.admin.call('CLUSTER', 'GETKEYSINSLOT', slot, 1)) as string[];
    if (keys.length === 0) break;
    await from.admin.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5_000, 'REPLACE', 'KEYS', ...keys);
    moved += keys.length;
    await sleep(pauseMs);
  }
  await to.admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
  await from.admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
  return moved;
}

/** Which node owns `slot`, by node id, from `CLUSTER SLOTS`. */
export async function ownerOf(admin: Redis, slot: number): Promise<string> {
  const ranges = (await admin.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, string]]>;
  const range = ranges.find(([start, end]) => slot >= start && slot <= end);
  return range?.[2][2] ?? '';
}
