import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { addressOf, hashTagOnNode, mastersOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { withTimeout } from '../common/deadline.js';
import type { Duration } from '../common/duration.js';
import { messageOf } from '../common/errors.js';
import { durationSchema, parseOptions, prefixSchema, ratioSchema, redisClientSchema } from '../common/options.js';
import { traced, tracing } from '../observability/channels.js';
import { runScript } from '../scripts/registry.js';
import { assessNodeInfo, type Counters, clusterHealth, mergeClusterNodes, round } from './assess.js';
import { type HealthHttpResponse, healthHttpResponse, type LivenessBody, livenessHttpResponse } from './http.js';
import { type ClusterNodeLine, parseClusterNodes, parseInfo } from './info.js';
import { type ClusterHealth, type HealthProblem, type HealthReport, type NodeHealth, statusOf } from './report.js';

/** Options for {@link RedisHealth}. */
export interface RedisHealthOptions {
  /** The client to check: a standalone Redis or a Cluster. */
  redis: RedisLike;
  /**
   * Hard limit for one check. A down Redis is reported as `down` after this long, never a hang
   * (ioredis' defaults alone hold a PING for ~10 s). Default `'500ms'`.
   */
  timeout?: Duration;
  /** Namespace of the write-probe key. Default `'redscale'`. */
  prefix?: string;
  /**
   * Prove that each master accepts writes with a tiny `SET … PX` through a script (catches
   * OOM under `noeviction`, read-only replicas after a failover, MISCONF). Default `true`.
   */
  writeProbe?: boolean;
  /** PING round trip at or above which the status is `degraded`. Default `'100ms'`. */
  latencyThreshold?: Duration;
  /** `used_memory / maxmemory` at or above which the status is `degraded`. Default `0.9`. */
  memoryThreshold?: number;
}

const optionsSchema = z.strictObject({
  redis: redisClientSchema,
  timeout: durationSchema().default(500),
  prefix: prefixSchema.default('redscale'),
  writeProbe: z.boolean().default(true),
  latencyThreshold: durationSchema().default(100),
  memoryThreshold: ratioSchema.default(0.9),
});

type ResolvedOptions = z.output<typeof optionsSchema>;

const PROBE_TTL_MS = 10_000;

interface NodeCheck {
  health: NodeHealth;
  problems: HealthProblem[];
  clusterInfo?: Record<string, string>;
  clusterNodes?: ClusterNodeLine[];
}

/**
 * Checks a Redis (standalone or Cluster) under a hard timeout and reports `up`, `degraded` or
 * `down`, with the evidence: PING latency, role, memory against `maxmemory` and the eviction
 * policy, clients, evictions and rejected connections since the last check, the replication link
 * and, on Cluster, `cluster_state`, failing slots and every node's status.
 *
 * @example
 * ```ts
 * const health = new RedisHealth({ redis, timeout: '500ms' })
 * app.get('/ready', async (_req, res) => {
 *   const { statusCode, body } = await health.readiness()
 *   res.status(statusCode).json(body)
 * })
 * ```
 */
export class RedisHealth {
  readonly #options: ResolvedOptions;
  readonly #previous = new Map<string, Counters>();
  #inFlight: Promise<HealthReport> | undefined;
  #draining = false;

  /** @throws InvalidOptionError when an option is invalid. */
  constructor(options: RedisHealthOptions) {
    this.#options = parseOptions(optionsSchema, options, 'RedisHealth');
  }

  /**
   * Runs one check. Never rejects and never takes much longer than `timeout`; concurrent calls
   * share the check in flight.
   */
  check(): Promise<HealthReport> {
    this.#inFlight ??= this.#traced().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  /** For `/live`: 200 while the process runs. Never touches Redis, so a Redis outage never restarts pods. */
  liveness(): HealthHttpResponse<LivenessBody> {
    return livenessHttpResponse();
  }

  /**
   * For `/ready`: runs {@link check} and answers 200 (`up`, `degraded`) or 503 (`down`). Once
   * {@link drain} was called it answers 503 at once, without asking Redis.
   */
  async readiness(): Promise<HealthHttpResponse<HealthReport>> {
    if (this.#draining) return { statusCode: 503, body: this.#drainingReport() };
    return healthHttpResponse(await this.check());
  }

  /**
   * Marks this instance as shutting down: from now on {@link readiness} answers 503 (a `down`
   * report with a `draining` problem) so the load balancer takes the instance out of rotation,
   * while liveness stays 200. `gracefulShutdown()` calls it first thing on SIGTERM.
   */
  drain(): void {
    this.#draining = true;
  }

  /** Whether {@link drain} was called. */
  get draining(): boolean {
    return this.#draining;
  }

  #drainingReport(): HealthReport {
    const problems: HealthProblem[] = [
      { code: 'draining', severity: 'down', message: 'this instance is shutting down: take it out of rotation' },
    ];
    return {
      status: 'down',
      mode: isCluster(this.#options.redis) ? 'cluster' : 'standalone',
      checkedAt: new Date().toISOString(),
      durationMs: 0,
      latencyMs: null,
      problems,
      nodes: [],
    };
  }

  /** The check, traced on `redscale:health.check` when someone subscribed. */
  #traced(): Promise<HealthReport> {
    const channel = tracing.healthCheck;
    if (!traced(channel)) return this.#check();
    return channel.tracePromise(this.#check, { prefix: this.#options.prefix }, this);
  }

  async #check(): Promise<HealthReport> {
    const { redis } = this.#options;
    const started = performance.now();
    const checkedAt = new Date().toISOString();
    const clusterMode = isCluster(redis);
    const masters = mastersOf(redis);
    const checks = await Promise.all(masters.map((node) => this.#checkNode(node, clusterMode)));

    const problems = checks.flatMap((check) => check.problems);
    let nodes = checks.map((check) => check.health);
    let cluster: ClusterHealth | undefined;

    if (clusterMode) {
      const view = checks.find((check) => check.clusterInfo);
      if (masters.length === 0) {
        problems.push({
          code: 'unreachable',
          severity: 'down',
          message: `the Cluster client has no master connections (status: ${redis.status})`,
        });
      } else if (!view?.clusterInfo) {
        problems.push({ code: 'cluster-state', severity: 'down', message: 'no Cluster node answered CLUSTER INFO' });
      } else {
        cluster = clusterHealth(view.clusterInfo);
        if (cluster.state !== 'ok') {
          problems.push({
            code: 'cluster-state',
            severity: 'down',
            message: `cluster_state is ${cluster.state} (${cluster.slotsFail} slots failing, ${cluster.slotsPfail} possibly failing)`,
          });
        }
        nodes = mergeClusterNodes(nodes, view.clusterNodes ?? [], problems);
      }
    }

    const latencies = nodes.flatMap((node) => (node.latencyMs === null ? [] : [node.latencyMs]));
    return {
      status: statusOf(problems),
      mode: clusterMode ? 'cluster' : 'standalone',
      checkedAt,
      durationMs: round(performance.now() - started),
      latencyMs: latencies.length ? Math.max(...latencies) : null,
      problems,
      nodes,
      ...(cluster && { cluster }),
    };
  }

  async #checkNode(node: Redis, clusterMode: boolean): Promise<NodeCheck> {
    const { redis, timeout, writeProbe, prefix } = this.#options;
    const address = addressOf(node);
    const context = { node: address };
    const pingStarted = performance.now();
    const ping = withTimeout(node.ping(), timeout, 'PING', context).then(() => performance.now() - pingStarted);
    const info = withTimeout(node.info(), timeout, 'INFO', context);
    const probeSent = Date.now();
    // The probe goes through the main client with a key whose hash tag lives on this node, so
    // ioredis routes it there; scripts are only registered on clients redscale was given.
    const probe = writeProbe
      ? withTimeout(
          runScript(redis, 'healthProbe', [`${prefix}:health:${hashTagOnNode(redis, node)}`], [PROBE_TTL_MS]),
          timeout,
          'write probe',
          context,
        ).then((reply) => clockOffset(reply, probeSent, Date.now()))
      : undefined;
    const clusterInfo = clusterMode ? withTimeout(node.cluster('INFO'), timeout, 'CLUSTER INFO', context) : undefined;
    const clusterNodes = clusterMode
      ? withTimeout(node.cluster('NODES'), timeout, 'CLUSTER NODES', context)
      : undefined;
    const [pingResult, infoResult, probeResult, clusterInfoResult, clusterNodesResult] = await Promise.allSettled([
      ping,
      info,
      probe,
      clusterInfo,
      clusterNodes,
    ]);

    const problems: HealthProblem[] = [];
    if (pingResult.status === 'rejected') {
      const error = messageOf(pingResult.reason);
      problems.push({
        code: 'unreachable',
        severity: clusterMode ? 'degraded' : 'down',
        message: `Redis at ${address} did not answer PING: ${error}`,
        node: address,
      });
      return {
        health: { address, status: 'down', role: 'unknown', latencyMs: null, error },
        problems,
      };
    }

    const latencyMs = round(pingResult.value);
    const health: NodeHealth = { address, status: 'up', role: 'unknown', latencyMs };
    if (latencyMs >= this.#options.latencyThreshold) {
      problems.push({
        code: 'slow',
        severity: 'degraded',
        message: `PING took ${latencyMs} ms (threshold ${this.#options.latencyThreshold} ms)`,
        node: address,
      });
    }
    if (infoResult.status === 'fulfilled') {
      assessNodeInfo(parseInfo(infoResult.value), health, problems, this.#options.memoryThreshold, this.#previous);
    }
    if (probe) {
      health.writable = probeResult.status === 'fulfilled';
      if (probeResult.status === 'fulfilled' && typeof probeResult.value === 'number') {
        health.clockOffsetMs = probeResult.value;
      } else if (probeResult.status === 'rejected') {
        health.error = messageOf(probeResult.reason);
        problems.push({
          code: 'not-writable',
          severity: 'down',
          message: `Redis at ${address} refused a write: ${health.error}`,
          node: address,
        });
      }
    }
    health.status = statusOf(problems);
    return {
      health,
      problems,
      ...(clusterInfoResult.status === 'fulfilled' &&
        typeof clusterInfoResult.value === 'string' && { clusterInfo: parseInfo(clusterInfoResult.value) }),
      ...(clusterNodesResult.status === 'fulfilled' &&
        typeof clusterNodesResult.value === 'string' && { clusterNodes: parseClusterNodes(clusterNodesResult.value) }),
    };
  }
}

function clockOffset(reply: unknown, sentAt: number, receivedAt: number): number | undefined {
  if (!Array.isArray(reply) || reply.length < 2) return undefined;
  const serverMs = Number(reply[0]) * 1000 + Number(reply[1]) / 1000;
  return Number.isFinite(serverMs) ? Math.round(serverMs - (sentAt + receivedAt) / 2) : undefined;
}
