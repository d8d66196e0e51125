import { type ClusterNodeLine, infoNumber } from './info.js';
import type { ClusterHealth, HealthProblem, NodeHealth } from './report.js';

/** INFO counters remembered between checks, to report what happened since the last one. */
export interface Counters {
  evicted: number;
  rejected: number;
}

/**
 * Reads one node's INFO into its report (role, memory, clients, counters, replication) and adds
 * the problems it shows: memory at or above `memoryThreshold` of maxmemory, an `allkeys-*`
 * eviction policy, evictions and rejected connections since the last check, a lost replica link.
 */
export function assessNodeInfo(
  fields: Record<string, string>,
  health: NodeHealth,
  problems: HealthProblem[],
  memoryThreshold: number,
  counters: Map<string, Counters>,
): void {
  const { address } = health;
  health.role = fields.role === 'master' ? 'master' : fields.role === 'slave' ? 'replica' : 'unknown';
  if (fields.redis_version) health.redisVersion = fields.redis_version;

  const usedBytes = infoNumber(fields, 'used_memory');
  const maxBytes = infoNumber(fields, 'maxmemory') ?? 0;
  const evictionPolicy = fields.maxmemory_policy ?? 'unknown';
  if (usedBytes !== undefined) {
    const usageRatio = maxBytes > 0 ? round(usedBytes / maxBytes, 4) : null;
    health.memory = { usedBytes, maxBytes, usageRatio, evictionPolicy };
    if (usageRatio !== null && usageRatio >= memoryThreshold) {
      problems.push({
        code: 'memory',
        severity: 'degraded',
        message: `memory is at ${Math.round(usageRatio * 100)}% of maxmemory (threshold ${Math.round(memoryThreshold * 100)}%)`,
        node: address,
      });
    }
  }
  if (evictionPolicy.startsWith('allkeys-')) {
    problems.push({
      code: 'eviction-policy',
      severity: 'warning',
      message: `maxmemory-policy is ${evictionPolicy}: under memory pressure Redis may evict locks, rate-limit counters and cache tag versions; prefer volatile-* or noeviction`,
      node: address,
    });
  }

  const connected = infoNumber(fields, 'connected_clients');
  const blocked = infoNumber(fields, 'blocked_clients');
  if (connected !== undefined) health.clients = { connected, blocked: blocked ?? 0 };

  const evicted = infoNumber(fields, 'evicted_keys');
  const rejected = infoNumber(fields, 'rejected_connections');
  if (evicted !== undefined && rejected !== undefined) {
    const previous = counters.get(address);
    counters.set(address, { evicted, rejected });
    // A restarted server resets its counters: count from zero rather than report a negative.
    const evictedSince = previous ? (evicted >= previous.evicted ? evicted - previous.evicted : evicted) : null;
    const rejectedSince = previous ? (rejected >= previous.rejected ? rejected - previous.rejected : rejected) : null;
    health.evictedKeysSinceLastCheck = evictedSince;
    health.rejectedConnectionsSinceLastCheck = rejectedSince;
    if (evictedSince) {
      problems.push({
        code: 'evictions',
        severity: 'warning',
        message: `${evictedSince} keys were evicted since the last check`,
        node: address,
      });
    }
    if (rejectedSince) {
      problems.push({
        code: 'rejected-connections',
        severity: 'degraded',
        message: `${rejectedSince} connections were rejected (maxclients) since the last check`,
        node: address,
      });
    }
  }

  if (health.role === 'replica') {
    const linkStatus = fields.master_link_status === 'up' ? 'up' : 'down';
    const lastIo = infoNumber(fields, 'master_last_io_seconds_ago');
    health.replication = {
      linkStatus,
      lastIoSecondsAgo: lastIo === undefined || lastIo < 0 ? null : lastIo,
      syncInProgress: fields.master_sync_in_progress === '1',
    };
    if (linkStatus === 'down') {
      problems.push({
        code: 'replica-link-down',
        severity: 'degraded',
        message: 'this replica has lost its link to its master; reads may be stale',
        node: address,
      });
    }
  }
}

export function clusterHealth(fields: Record<string, string>): ClusterHealth {
  return {
    state: fields.cluster_state === 'ok' ? 'ok' : 'fail',
    slotsAssigned: infoNumber(fields, 'cluster_slots_assigned') ?? 0,
    slotsOk: infoNumber(fields, 'cluster_slots_ok') ?? 0,
    slotsPfail: infoNumber(fields, 'cluster_slots_pfail') ?? 0,
    slotsFail: infoNumber(fields, 'cluster_slots_fail') ?? 0,
    knownNodes: infoNumber(fields, 'cluster_known_nodes') ?? 0,
    size: infoNumber(fields, 'cluster_size') ?? 0,
  };
}

const FAILED_FLAGS = ['fail', 'fail?', 'noaddr'];

/**
 * Adds `CLUSTER NODES`' view to the masters checked directly: ids and flags, and every node the
 * client no longer holds a connection to (ioredis drops a dead node from its pool), so a killed
 * master still shows up as `down`.
 */
export function mergeClusterNodes(
  checked: NodeHealth[],
  lines: readonly ClusterNodeLine[],
  problems: HealthProblem[],
): NodeHealth[] {
  const byAddress = new Map(checked.map((node) => [node.address, node]));
  const merged = [...checked];
  for (const line of lines) {
    const failed = line.flags.some((flag) => FAILED_FLAGS.includes(flag)) || line.linkState === 'disconnected';
    const existing = byAddress.get(line.address);
    if (existing) {
      existing.id = line.id;
      existing.flags = line.flags;
      continue;
    }
    const node: NodeHealth = {
      address: line.address,
      id: line.id,
      flags: line.flags,
      role: line.role,
      status: failed ? 'down' : 'up',
      latencyMs: null,
    };
    if (failed) {
      node.error = `flags ${line.flags.join(',')}, link ${line.linkState}`;
      problems.push({
        code: 'cluster-node-failed',
        severity: 'degraded',
        message: `Cluster node ${line.address} (${line.role}) is failing: ${node.error}`,
        node: line.address,
      });
    }
    merged.push(node);
  }
  return merged;
}

/** Rounds to `digits` decimals, for reports meant to be read. */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
