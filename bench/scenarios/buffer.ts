import { WriteBuffer } from '../../src/index.js';
import { cyclingNames } from '../lib/names.js';
import type { Scenario } from '../lib/types.js';

/** A chat message like the seed's, about 120 bytes of JSON. */
const nextUser = cyclingNames('user', 10_000);
const message = () => ({
  chatId: nextUser(),
  text: 'hello from the benchmark, a message of ordinary length',
  at: Date.now(),
});

/**
 * Enqueueing one write: what a request handler pays to hand a write to the buffer. redscale's
 * enqueue is one round trip (a script that checks the backlog bound and the caller's deadline,
 * then XADDs); beside it a bare XADD of the same fields (the ceiling for a stream) and the seed's
 * design, an LPUSH of the JSON onto a list (which loses the batch a worker popped if it dies).
 * Wire it in bench/run.ts's SCENARIOS as `writeBufferEnqueue`.
 */
export const writeBufferEnqueue: Scenario = {
  name: 'buffer-enqueue',
  description:
    'Hand one ~120-byte write to a buffer: redscale WriteBuffer.enqueue (one round trip: backlog bound, deadline, XADD, a stable id) against a bare XADD of the same fields and the hand-written LPUSH onto a list that services poll today.',
  contenders: (ctx) => [
    {
      name: 'XADD (bare)',
      kind: 'ceiling',
      setup: async () => {
        const key = `${ctx.prefix}:bare-stream`;
        let n = 0;
        return () => ctx.redis.xadd(key, '*', 'i', `bare-${n++}`, 'd', JSON.stringify(message()));
      },
    },
    {
      name: 'redscale WriteBuffer.enqueue',
      kind: 'redscale',
      setup: async () => {
        // The bench never consumes: lift the backlog bound out of the way.
        const buffer = new WriteBuffer({
          redis: ctx.redis,
          prefix: ctx.prefix,
          name: 'bench',
          maxBacklog: 100_000_000,
        });
        return () => buffer.enqueue(message());
      },
    },
    {
      name: 'hand-written LPUSH queue (a list workers poll)',
      kind: 'hand-written',
      setup: async () => {
        // ../shared/seeds/002 step 3: QueueWrite(ctx, operation, data) pushes JSON onto a list.
        const key = `${ctx.prefix}:seed-write-queue`;
        return () => ctx.redis.lpush(key, JSON.stringify({ operation: 'chat_message', data: message() }));
      },
    },
  ],
};
