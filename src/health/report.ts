/** Overall health. `degraded` still serves traffic (HTTP 200); `down` does not (HTTP 503). */
export type HealthStatus = 'up' | 'degraded' | 'down';

/** How much a problem weighs: `warning`s are reported but never change the status. */
export type ProblemSeverity = 'warning' | 'degraded' | 'down';

/** Stable identifiers of the problems a health check can find. */
export type HealthProblemCode =
  | 'unreachable'
  | 'not-writable'
  | 'slow'
  | 'memory'
  | 'rejected-connections'
  | 'replica-link-down'
  | 'cluster-state'
  | 'cluster-node-failed'
  | 'eviction-policy'
  | 'evictions'
  /** The instance is shutting down ({@link RedisHealth.drain}): readiness is 503 whatever Redis says. */
  | 'draining';

/** One finding of a health check. */
export interface HealthProblem {
  /** What was found, as a stable code. */
  code: HealthProblemCode;
  /** How much the problem lowers the status: `degraded` or `down`. */
  severity: ProblemSeverity;
  /** The finding in words, for a log or a dashboard. */
  message: string;
  /** `host:port` of the node concerned, when it is one node. */
  node?: string;
}

/** What one Redis node reported. Fields are absent when the node could not be asked. */
export interface NodeHealth {
  /** `host:port`. */
  address: string;
  /** This node's own status: `up`, `degraded` or `down`. */
  status: HealthStatus;
  /** The node's replication role, `unknown` when it could not be asked. */
  role: 'master' | 'replica' | 'unknown';
  /** Cluster node id. */
  id?: string;
  /** Cluster flags from `CLUSTER NODES` (e.g. `master`, `fail?`, `fail`). */
  flags?: string[];
  /** PING round trip in milliseconds; `null` when it failed or timed out. */
  latencyMs: number | null;
  /** `redis_version` from `INFO server`. */
  redisVersion?: string;
  /** Memory use from `INFO memory`. */
  memory?: {
    /** `used_memory`, in bytes. */
    usedBytes: number;
    /** `maxmemory`; 0 means no limit. */
    maxBytes: number;
    /** `usedBytes / maxBytes`, or `null` without a limit. */
    usageRatio: number | null;
    /** `maxmemory-policy`, e.g. `noeviction` or `allkeys-lru`. */
    evictionPolicy: string;
  };
  /** Connected and blocked clients, from `INFO clients`. */
  clients?: { connected: number; blocked: number };
  /** Keys evicted since the previous check of this node; `null` on the first check. */
  evictedKeysSinceLastCheck?: number | null;
  /** Connections refused (maxclients) since the previous check of this node; `null` on the first. */
  rejectedConnectionsSinceLastCheck?: number | null;
  /** On a replica: the link to its master. */
  replication?: { linkStatus: 'up' | 'down'; lastIoSecondsAgo: number | null; syncInProgress: boolean };
  /** Whether the write probe succeeded; absent when the probe is off or did not run. */
  writable?: boolean;
  /** Server clock minus this process's clock, from the write probe, in milliseconds. */
  clockOffsetMs?: number;
  /** Why the node is not `up`, briefly. */
  error?: string;
}

/** The cluster-wide view from `CLUSTER INFO`. */
export interface ClusterHealth {
  /** `cluster_state`: `fail` when some slots are not served. */
  state: 'ok' | 'fail';
  /** Slots assigned to a master (16384 when fully covered). */
  slotsAssigned: number;
  /** Slots whose master is reachable. */
  slotsOk: number;
  /** Slots whose master some node suspects to be failing (`PFAIL`). */
  slotsPfail: number;
  /** Slots whose master the Cluster agreed has failed (`FAIL`). */
  slotsFail: number;
  /** Nodes this node knows of, masters and replicas. */
  knownNodes: number;
  /** Masters serving at least one slot. */
  size: number;
}

/** The result of {@link RedisHealth.check}. Plain JSON: safe to return from a health endpoint. */
export interface HealthReport {
  /** The worst status among the problems: `up`, `degraded` or `down`. */
  status: HealthStatus;
  /** Whether the client is a standalone (or Sentinel) client or a Cluster client. */
  mode: 'standalone' | 'cluster';
  /** ISO timestamp at which the check started. */
  checkedAt: string;
  /** How long the check took, in milliseconds. */
  durationMs: number;
  /** Slowest PING among reachable nodes; `null` when none answered. */
  latencyMs: number | null;
  /** Every finding, worst first; empty when all is well. */
  problems: HealthProblem[];
  /** One entry per node asked (every master and replica on a Cluster). */
  nodes: NodeHealth[];
  /** The Cluster's own view; absent on a standalone client. */
  cluster?: ClusterHealth;
}

/** The worst severity among the problems, as a status. */
export function statusOf(problems: readonly HealthProblem[]): HealthStatus {
  if (problems.some((problem) => problem.severity === 'down')) return 'down';
  if (problems.some((problem) => problem.severity === 'degraded')) return 'degraded';
  return 'up';
}
