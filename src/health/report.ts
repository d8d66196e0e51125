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
  code: HealthProblemCode;
  severity: ProblemSeverity;
  message: string;
  /** `host:port` of the node concerned, when it is one node. */
  node?: string;
}

/** What one Redis node reported. Fields are absent when the node could not be asked. */
export interface NodeHealth {
  /** `host:port`. */
  address: string;
  status: HealthStatus;
  role: 'master' | 'replica' | 'unknown';
  /** Cluster node id. */
  id?: string;
  /** Cluster flags from `CLUSTER NODES` (e.g. `master`, `fail?`, `fail`). */
  flags?: string[];
  /** PING round trip in milliseconds; `null` when it failed or timed out. */
  latencyMs: number | null;
  redisVersion?: string;
  memory?: {
    usedBytes: number;
    /** `maxmemory`; 0 means no limit. */
    maxBytes: number;
    /** `usedBytes / maxBytes`, or `null` without a limit. */
    usageRatio: number | null;
    evictionPolicy: string;
  };
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
  state: 'ok' | 'fail';
  slotsAssigned: number;
  slotsOk: number;
  slotsPfail: number;
  slotsFail: number;
  knownNodes: number;
  size: number;
}

/** The result of {@link RedisHealth.check}. Plain JSON: safe to return from a health endpoint. */
export interface HealthReport {
  status: HealthStatus;
  mode: 'standalone' | 'cluster';
  /** ISO timestamp at which the check started. */
  checkedAt: string;
  /** How long the check took, in milliseconds. */
  durationMs: number;
  /** Slowest PING among reachable nodes; `null` when none answered. */
  latencyMs: number | null;
  problems: HealthProblem[];
  nodes: NodeHealth[];
  cluster?: ClusterHealth;
}

/** The worst severity among the problems, as a status. */
export function statusOf(problems: readonly HealthProblem[]): HealthStatus {
  if (problems.some((problem) => problem.severity === 'down')) return 'down';
  if (problems.some((problem) => problem.severity === 'degraded')) return 'degraded';
  return 'up';
}
