import { performance } from 'node:perf_hooks';
import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import { RedisCommandError, RedisTimeoutError } from '../common/errors.js';
import type { ServerClocks } from '../common/server-clock.js';
import { coalescedEval } from '../scripts/coalesce.js';
import type { ScriptName } from '../scripts/registry.js';

/** A lock script's status: it did what was asked. */
export const GRANTED = 1;
/** A lock script's status: it could not (held by someone else, or no longer held). */
export const REFUSED = 0;
/** A lock script's status: it ran after its caller's deadline and changed nothing. */
export const TOO_LATE = -1;

/** A lock script's reply: a status, the server's time, then the script's own numbers. */
export interface TimedReply {
  /** What the script did. */
  status: typeof GRANTED | typeof REFUSED | typeof TOO_LATE;
  /** The server's time (epoch ms) when it ran. */
  serverMs: number;
  /** The script's own numbers (fencing tokens, a holder's remaining ms). */
  values: number[];
}

/** How many times a reply that arrived in time but says "too late" is retried with the clock it taught. */
const CLOCK_RETRIES = 2;

/**
 * Runs a state-changing lock script that receives the caller's `deadline` (a `performance.now()`
 * time) in the server's own time, so that if Redis runs it after the caller gave up (ioredis
 * replays queued and unanswered commands after a reconnection; a stalled server runs them when it
 * resumes) it changes nothing. Every reply carries the server's time, from which the node's clock
 * is learned. A "too late" reply that still arrived before the deadline means the clock estimate
 * was wrong (first contact, or the server's clock jumped): the script runs again with the clock
 * just learned.
 *
 * The script's last argument is the server deadline; its reply is `{ status, server ms, ...values }`.
 * Sent as plain EVALSHA, written together with the client's other calls of the same turn
 * ({@link coalescedEval}).
 * @throws RedisTimeoutError at the deadline, RedisCommandError when Redis fails or the reply is malformed.
 */
export async function runBeforeDeadline(
  redis: RedisLike,
  clocks: ServerClocks,
  script: ScriptName,
  keys: readonly string[],
  args: ReadonlyArray<string | number>,
  deadline: number,
  timeoutMs: number,
  operation: string,
  context: Record<string, unknown>,
): Promise<TimedReply> {
  const clock = clocks.of(keys[0] ?? '');
  for (let attempt = 0; ; attempt++) {
    const serverDeadline = clock.serverTimeAt(deadline);
    const raw = await untilDeadline(
      coalescedEval(redis, script, keys, [...args, serverDeadline]),
      deadline,
      timeoutMs,
      operation,
      context,
    );
    const reply = parseTimedReply(raw);
    if (!reply) {
      throw new RedisCommandError(operation, new Error(`unexpected reply from ${script}: ${describe(raw)}`), context);
    }
    clock.learn(reply.serverMs, performance.now());
    if (reply.status !== TOO_LATE) return reply;
    if (attempt >= CLOCK_RETRIES || performance.now() >= deadline) {
      throw new RedisTimeoutError(operation, timeoutMs, context);
    }
  }
}

/** Validates a reply read from Redis: an array of finite integers, status first, then the server time. */
export function parseTimedReply(raw: unknown): TimedReply | undefined {
  if (!Array.isArray(raw) || raw.length < 2) return undefined;
  const status = integerOf(raw[0]);
  const serverMs = integerOf(raw[1]);
  if (status !== GRANTED && status !== REFUSED && status !== TOO_LATE) return undefined;
  if (serverMs === undefined) return undefined;
  const values: number[] = [];
  for (let i = 2; i < raw.length; i++) {
    const value = integerOf(raw[i]);
    if (value === undefined) return undefined;
    values.push(value);
  }
  return { status, serverMs, values };
}

/** A reply item as a safe integer (Redis integers arrive as numbers, some clients send strings). */
function integerOf(item: unknown): number | undefined {
  const value = typeof item === 'string' ? Number(item) : item;
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 80) ?? String(value);
  } catch {
    return String(value);
  }
}
