import type { RedisLike } from '../../src/index.js';
import type { LoadOptions, Operation } from './measure.js';

/**
 * Who is being measured: the ceiling, redscale, a peer library, the code services hand-write today
 * without a library (`hand-written`: a typical migration guide's ThrottlerStorage, a GET/SETEX
 * getOrSet, KEYS + DEL), or a common hand-written pattern described without code (a baseline).
 */
export type ContenderKind = 'ceiling' | 'redscale' | 'peer' | 'hand-written' | 'baseline';

/** One library's way of doing a scenario's operation. */
export interface Contender {
  name: string;
  kind: ContenderKind;
  /** Prepares state and returns the operation to measure. */
  setup(): Promise<Operation>;
  /** Releases what setup made (clients, keys). */
  teardown?(): Promise<void>;
}

/** What a scenario gets to build its contenders. */
export interface BenchContext {
  /** URL of the standalone Redis the run uses. */
  redisUrl: string;
  /** A redscale client (createClient defaults) for contenders to share. */
  redis: RedisLike;
  /** A key prefix unique to this run. */
  prefix: string;
}

/** A question the benchmarks answer, with everyone who could answer it. */
export interface Scenario {
  name: string;
  description: string;
  contenders(context: BenchContext): Contender[];
  /** Load shape this scenario needs instead of the run's defaults (e.g. concurrency 1). */
  load?: Partial<LoadOptions>;
  /**
   * Run the whole scenario once at each of these concurrencies (reported as separate tables,
   * `<name> @ c=N`), e.g. to see what batching does at 1, 8 and 64 requests in flight.
   */
  concurrencies?: number[];
}

/** One measured run of a trial scenario: who, under what setting, and the numbers. */
export interface Trial {
  contender: string;
  kind: ContenderKind;
  /** The setting this run used, e.g. `'10,000 keys per tag'`. */
  setting?: string;
  metrics: Record<string, number>;
}

/** A column of a trial scenario's table. */
export interface TrialColumn {
  key: string;
  title: string;
  /** Which way is better, for reading; `ideal` is the best possible value, when there is one. */
  better: 'lower' | 'higher';
  ideal?: number;
}

/** A question answered by measured quantities rather than a rate (loads in a stampede, cost of an invalidation). */
export interface TrialScenario {
  name: string;
  description: string;
  columns: TrialColumn[];
  run(context: BenchContext, options: BenchOptions): Promise<Trial[]>;
  /** Roughly how long `run` takes, ms, for the plan printed up front. Default 20 s. */
  estimateMs?(options: BenchOptions): number;
}

/** Sizes and switches a run was given on the command line. */
export interface BenchOptions {
  /** Keys per tag to measure tag invalidation at. */
  tagSizes: number[];
  /** Keys to delete by pattern. */
  patternKeys: number;
}
