import type { Serializer } from '../cache/options.js';
import type { StandardSchemaV1 } from '../cache/schema.js';
import { messageOf, type RedscaleError } from '../common/errors.js';
import type { ScriptCaller } from './calls.js';
import type { FlushHandler, ResolvedConsumerOptions } from './options.js';

/** Counters of one consumer, across its shards. */
export interface ConsumerStats {
  /** Items handed to `flush` (a retry counts again). */
  delivered: number;
  /** Items `flush` committed. */
  committed: number;
  /** Items whose flush failed (each is retried or dead-lettered). */
  failed: number;
  /** Items moved to the dead letters (failed `maxAttempts` times, or malformed). */
  deadLettered: number;
  /** Items taken over from consumers that stopped or stalled. */
  claimed: number;
  /** Redis calls that failed (each is retried; none loses an item). */
  redisErrors: number;
}

/** What every shard worker of one consumer shares. */
export interface WorkerContext<T> {
  buffer: string;
  consumer: string;
  caller: ScriptCaller;
  options: ResolvedConsumerOptions;
  serializer: Serializer;
  schema: StandardSchemaV1<unknown, T> | undefined;
  /** Dead letters one shard may hold. */
  maxDeadLetters: number;
  flush: FlushHandler<T>;
  stats: ConsumerStats;
  report(error: RedscaleError): void;
  /** Aborted when `stop()` gave up waiting for flushes. */
  signal: AbortSignal;
  stopping(): boolean;
  /** Sleeps, waking early when the consumer stops. */
  sleep(ms: number): Promise<void>;
}

/**
 * Whether Redis said the group is gone (it lost its data, or someone destroyed the group): so is
 * everything the group had pending. The next read creates the group again.
 */
export function isGroupLost(error: unknown): boolean {
  return /NOGROUP/.test(messageOf(error)) || /NOGROUP/.test(messageOf((error as { cause?: unknown }).cause));
}
