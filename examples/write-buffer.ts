/**
 * A write buffer that loses nothing: request handlers enqueue chat messages in one round trip;
 * two consumer "instances" write them to a pretend database in batches, idempotently on the
 * item id; one message always violates a constraint, is retried with backoff and ends in the dead
 * letters with its error, where it is inspected, fixed and replayed; the consumers stop by
 * draining.
 *
 *   npm run example:write-buffer                # finds or starts a Redis by itself
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BufferedItem, createClient, WriteBuffer } from 'redscale';
import { findOrStartRedis } from '../test/harness/find-redis.js';

interface Message {
  chatId: string;
  text: string;
}

const found = await findOrStartRedis();
const redis = createClient(found.url);
const buffer = new WriteBuffer<Message>({ redis, prefix: `example-${process.pid}`, name: 'chat-messages' });

// A pretend database: a table keyed by message id (INSERT … ON CONFLICT (id) DO NOTHING), which
// rejects empty messages the way a CHECK constraint would.
const table = new Map<string, Message>();
let transactions = 0;
let rejectEmpty = true;
async function insertMessages(items: BufferedItem<Message>[]) {
  transactions++;
  await sleep(20);
  const failed: Array<{ id: string; error: string }> = [];
  for (const { id, item } of items) {
    if (rejectEmpty && item.text.trim() === '') failed.push({ id, error: 'CHECK constraint "text_not_empty" failed' });
    else if (!table.has(id)) table.set(id, item); // at-least-once delivery: idempotent on the id
  }
  return { failed }; // everything not listed here is committed, and acknowledged
}

// Two instances consume the same buffer; each item goes to one of them.
const consumers = ['instance-a', 'instance-b'].map((name) =>
  buffer.consume(insertMessages, {
    consumerName: name,
    batchSize: 50,
    flushInterval: '50ms',
    maxAttempts: 3,
    retryDelay: { min: '100ms', max: '400ms' },
  }),
);

console.log('request handlers enqueue 500 messages, one round trip each:');
const started = performance.now();
const ids = await Promise.all(
  Array.from({ length: 500 }, (_, n) =>
    buffer.enqueue({ chatId: `chat-${n % 7}`, text: n === 42 ? ' ' : `message ${n}` }),
  ),
);
console.log(`  ${ids.length} enqueued in ${Math.round(performance.now() - started)} ms, e.g. id ${ids[0]}`);

while ((await buffer.backlog()).size > 0) await sleep(50);
console.log(`  ${table.size} rows written in ${transactions} transactions`);

const [dead] = await buffer.deadLetters();
console.log('\nthe empty message failed three times and waits in the dead letters:');
console.log(`  ${dead?.id}: ${JSON.stringify(dead?.item)} after ${dead?.attempts} attempts: ${dead?.error}`);

console.log('\nthe constraint is relaxed, and the dead letter replayed:');
rejectEmpty = false;
console.log(`  ${JSON.stringify(await buffer.replayDeadLetters())}`);
while ((await buffer.backlog()).size > 0) await sleep(50);
console.log(`  ${table.size} rows; dead letters left: ${(await buffer.backlog()).deadLetters}`);

console.log('\nthe consumers stop, draining what they hold:');
await Promise.all(consumers.map((consumer) => consumer.stop()));
for (const [i, consumer] of consumers.entries())
  console.log(`  instance ${'ab'[i]}: ${JSON.stringify(consumer.stats())}`);

for (const keys of buffer.keys) await redis.del(keys.stream, keys.deadLetters);
redis.disconnect();
await found.stop();
