import type { Redis } from 'ioredis';
import { addressOf, nodeOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import { RedisCommandError } from '../common/errors.js';

/** What a lock asks of replication before it trusts a grant. */
export interface ReplicationPolicy {
  /** Replicas that must acknowledge a grant (0: do not wait). */
  replicas: number;
  /** How long Redis waits for them (`WAIT`'s timeout), in ms. */
  timeoutMs: number;
}

/**
 * The connection a key's commands travel on: the client itself, or on a Cluster the master that
 * owns the key's slot. `WAIT` only counts writes sent on the connection it is sent on, so it must
 * follow the grant there.
 */
export function connectionOf(redis: RedisLike, key: string): Redis {
  if (!isCluster(redis)) return redis;
  const address = nodeOf(redis, key);
  const node = redis.nodes('master').find((candidate) => addressOf(candidate) === address);
  if (!node) throw new RedisCommandError('replication wait', new Error(`no connection to the master of "${key}"`));
  return node;
}

/**
 * Sends `WAIT replicas timeout` after the writes to each of `keys` (one key per slot group) and
 * resolves the fewest replicas that acknowledged. Redis answers by its own timeout; `deadline`
 * (a `performance.now()` time) bounds the call when Redis does not answer at all.
 * @throws a RedscaleError with code ERR_TIMEOUT or ERR_REDIS when Redis fails.
 */
export async function acknowledgedReplicas(
  redis: RedisLike,
  keys: readonly string[],
  policy: ReplicationPolicy,
  deadline: number,
  context: Record<string, unknown>,
): Promise<number> {
  // The socket each WAIT leaves on. Callers send it right after their writes were answered (no
  // I/O in between), so it is the socket that carried them.
  const sent = keys.map((key) => {
    const connection = connectionOf(redis, key);
    return { connection, socket: connection.stream };
  });
  const replies = await Promise.all(
    sent.map(({ connection }) =>
      untilDeadline(
        connection.wait(policy.replicas, policy.timeoutMs),
        deadline,
        policy.timeoutMs,
        'replication wait',
        context,
      ),
    ),
  );
  return Math.min(
    ...replies.map((reply, index) => {
      // ioredis resends an unanswered WAIT on the new socket after a reconnection, where it counts
      // that socket's writes (none) and answers at once: a changed socket proves nothing.
      if (sent[index]?.connection.stream !== sent[index]?.socket) return 0;
      return typeof reply === 'number' && Number.isSafeInteger(reply) ? reply : 0;
    }),
  );
}
