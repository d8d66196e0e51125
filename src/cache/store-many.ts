import { multiKeyGroups } from '../client/cluster.js';
import { runScript } from '../scripts/registry.js';
import type { Stored } from './envelope.js';
import type { Budget } from './gate.js';
import type { Encoded, EntryStore } from './store.js';

/** Keys per script call: each call stays short on Redis. */
const BATCH = 250;

/**
 * Entries' texts in Redis: one MGET per hash slot (on Cluster), all at once. A slot whose
 * MGET failed reads as undefined for its keys (the caller's misses); the others are answered.
 */
export async function readTexts(
  store: EntryStore,
  keys: readonly string[],
  budget: Budget,
): Promise<Map<string, Buffer | null | undefined>> {
  const gate = store.gate;
  const byEntry = new Map(keys.map((key) => [store.keyOf(key), key]));
  const texts = new Map<string, Buffer | null | undefined>();
  await Promise.all(
    multiKeyGroups(gate.redis, byEntry.keys()).map(async (group) => {
      const found = await gate
        .call('cache get many', gate.nodeOf(group[0] as string), budget, () => gate.redis.mgetBuffer(...group))
        .catch(() => undefined);
      group.forEach((entryKey, i) => {
        texts.set(byEntry.get(entryKey) as string, found ? (found[i] ?? null) : undefined);
      });
    }),
  );
  return texts;
}

/**
 * Stores values given by the caller (`cache-set-many`: revokes in-flight fills of their keys),
 * one script per hash slot and per {@link BATCH} keys, refused past the budget's deadline.
 * Resolves the keys stored (a slot whose call failed or ran late is left out).
 */
export async function setMany(
  store: EntryStore,
  entries: ReadonlyMap<string, Encoded>,
  budget: Budget,
): Promise<string[]> {
  const gate = store.gate;
  const byEntry = new Map([...entries.keys()].map((key) => [store.keyOf(key), key]));
  const stored: string[] = [];
  const calls: Array<Promise<void>> = [];
  for (const group of multiKeyGroups(gate.redis, byEntry.keys())) {
    for (let i = 0; i < group.length; i += BATCH) {
      const entryKeys = group.slice(i, i + BATCH);
      const keys = entryKeys.map((entryKey) => byEntry.get(entryKey) as string);
      const node = gate.nodeOf(entryKeys[0] as string);
      const args: Array<Stored | number> = [];
      for (const key of keys) {
        const encoded = entries.get(key) as Encoded;
        args.push(encoded.text, encoded.pxMs);
      }
      calls.push(
        gate
          .call('cache set many', node, budget, () =>
            runScript(
              gate.redis,
              'cacheSetMany',
              [...entryKeys, ...keys.map((key) => store.lockOf(key))],
              [gate.serverDeadline(node, budget), ...args],
            ),
          )
          .then(
            (reply) => {
              const [result, now] = reply as [number, number];
              gate.learn(node, Number(now));
              if (result === 1) stored.push(...keys);
            },
            () => {},
          ),
      );
    }
  }
  await Promise.all(calls);
  return stored;
}

/**
 * Deletes entries and revokes their fill locks (one script per hash slot, per {@link BATCH}
 * keys); resolves how many Redis had.
 */
export async function deleteEntries(store: EntryStore, keys: readonly string[], budget: Budget): Promise<number> {
  const gate = store.gate;
  const byEntry = new Map(keys.map((key) => [store.keyOf(key), key]));
  const calls: Array<Promise<unknown>> = [];
  for (const group of multiKeyGroups(gate.redis, byEntry.keys())) {
    for (let i = 0; i < group.length; i += BATCH) {
      const entries = group.slice(i, i + BATCH);
      const locks = entries.map((entryKey) => store.lockOf(byEntry.get(entryKey) as string));
      calls.push(
        gate.call('cache delete', gate.nodeOf(entries[0] as string), budget, () =>
          runScript(gate.redis, 'cacheDelete', [...entries, ...locks], []),
        ),
      );
    }
  }
  const counts = await Promise.all(calls);
  return counts.reduce<number>((sum, count) => sum + Number(count), 0);
}
