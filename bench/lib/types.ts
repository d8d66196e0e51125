import type { RedisLike } from '../../src/index.js';
import type { LoadOptions, Operation } from './measure.js';

/** Who is being measured: the ceiling, redscale, a peer library, or a seed's hand-written code. */
export type ContenderKind = 'ceiling' | 'redscale' | 'peer' | 'seed';

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
}

/** A contender in a counting scenario: one run, one number (e.g. loader calls in a stampede). */
export interface CountingContender {
  name: string;
  kind: ContenderKind;
  run(): Promise<number>;
}

/** A question answered by a count rather than a rate. */
export interface CountingScenario {
  name: string;
  description: string;
  /** What the number counts, e.g. `'loader calls'`. */
  metric: string;
  /** The best possible count, for the ratio column. */
  ideal: number;
  contenders(context: BenchContext): CountingContender[];
}
