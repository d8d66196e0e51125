import { setTimeout as sleep } from 'node:timers/promises';
import { withTimeout } from '../common/deadline.js';
import type { RedisLike } from './types.js';

/**
 * Closes a client politely and never hangs: QUIT (so pending replies arrive), then wait for the
 * connection to end — at most `timeoutMs`, because a client that is between reconnection attempts
 * answers QUIT at once and never emits `end` — then make sure it will not reconnect.
 */
export async function closeClient(redis: RedisLike, timeoutMs = 1_000): Promise<void> {
  if (redis.status === 'end') return;
  const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
  try {
    await withTimeout(redis.quit(), timeoutMs, 'QUIT');
  } catch {
    redis.disconnect();
  }
  await Promise.race([ended, sleep(timeoutMs, undefined, { ref: false })]);
  // The status may have moved on while we waited (TypeScript keeps the narrowing from above).
  if ((redis.status as string) !== 'end') redis.disconnect();
}
