import { createHistogram, performance } from 'node:perf_hooks';

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
}

/** Load shape of a measurement. */
export interface LoadOptions {
  /** Operations kept in flight at once. */
  concurrency: number;
  /** How long to measure, in ms (after a warm-up of a tenth of it). */
  durationMs: number;
}

/**
 * Runs `operation` from `concurrency` loops for `durationMs` and reports throughput and latency
 * (a high-resolution histogram from node:perf_hooks). A short warm-up runs first and is not
 * counted, so JIT and connection setup do not skew the first round.
 */
export async function measure(operation: Operation, load: LoadOptions): Promise<Measurement> {
  await drive(operation, load.concurrency, Math.max(100, load.durationMs / 10));
  return drive(operation, load.concurrency, load.durationMs);
}

async function drive(operation: Operation, concurrency: number, durationMs: number): Promise<Measurement> {
  const histogram = createHistogram();
  let ops = 0;
  let errors = 0;
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
  return {
    ops,
    errors,
    opsPerSec: Math.round(ops / elapsed),
    p50: histogram.percentile(50),
    p99: histogram.percentile(99),
  };
}
