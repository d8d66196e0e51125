import { createHistogram, performance } from 'node:perf_hooks';
import type { RedisCounters } from './redis-stats.js';

/** One operation under test. It must settle; a rejection counts as an error, not a crash. */
export type Operation = () => Promise<unknown>;

/** How one run of an operation went. */
export interface Measurement {
  ops: number;
  errors: number;
  opsPerSec: number;
  /** Latency percentiles, microseconds. */
  p50: number;
  p99: number;
  /** This process's CPU (user + system) per operation, µs: what the client side costs. */
  clientCpuUs: number;
  /** The Redis server's process CPU per operation, µs (reading, parsing, running, answering). */
  redisCpuUs: number;
  /** Redis command execution time per operation (INFO commandstats), µs. */
  redisCommandUs: number;
}

/** Load shape of a measurement. */
export interface LoadOptions {
  /** Operations kept in flight at once. */
  concurrency: number;
  /** How long to measure, in ms (after a warm-up of a tenth of it). */
  durationMs: number;
}

/**
 * Runs `operation` from `concurrency` loops for `durationMs` and reports throughput, latency (a
 * high-resolution histogram from node:perf_hooks) and CPU per operation on both sides:
 * `process.cpuUsage()` for the client, and the server's counters (`counters`) for Redis. CPU
 * per operation holds up on a noisy machine better than throughput. A short warm-up runs first
 * and is not counted, so JIT and connection setup do not skew the first round.
 */
export async function measure(
  operation: Operation,
  load: LoadOptions,
  counters: () => Promise<RedisCounters>,
): Promise<Measurement> {
  await drive(operation, load.concurrency, Math.max(100, load.durationMs / 10));
  const before = await counters();
  const result = await drive(operation, load.concurrency, load.durationMs);
  const after = await counters();
  const ops = Math.max(1, result.ops);
  return {
    ...result,
    redisCpuUs: round((after.cpuUs - before.cpuUs) / ops),
    redisCommandUs: round((after.commandUs - before.commandUs) / ops),
  };
}

const round = (value: number) => Math.round(value * 10) / 10;

async function drive(
  operation: Operation,
  concurrency: number,
  durationMs: number,
): Promise<Omit<Measurement, 'redisCpuUs' | 'redisCommandUs'>> {
  const histogram = createHistogram();
  let ops = 0;
  let errors = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  const loop = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await operation();
      } catch {
        errors++;
      }
      histogram.record(Math.max(1, Math.round((performance.now() - t0) * 1_000)));
      ops++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - started) / 1_000;
  const used = process.cpuUsage(cpu);
  return {
    ops,
    errors,
    opsPerSec: Math.round(ops / elapsed),
    p50: histogram.percentile(50),
    p99: histogram.percentile(99),
    clientCpuUs: round((used.user + used.system) / Math.max(1, ops)),
  };
}
