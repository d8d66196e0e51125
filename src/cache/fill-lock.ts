import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { slotOf } from '../client/cluster.js';
import { isCluster } from '../client/types.js';
import { runScript } from '../scripts/registry.js';
import type { Budget, RedisGate } from './gate.js';

/** What an attempt to take a fill lock found. */
export type Acquired =
  | { kind: 'acquired' }
  | { kind: 'busy'; pttl: number }
  | { kind: 'changed'; text: string | null }
  | { kind: 'late' };

const EMPTY = Buffer.alloc(0);

/**
 * The part of an entry's text that tells one write from another: up to its fifth `|` (kind,
 * fresh/stale times, load time, tags), at most 256 bytes. `cache-fill-lock.lua` computes the same.
 */
export function headerOf(text: string | Buffer | null): Buffer {
  if (text === null) return EMPTY;
  const bytes =
    typeof text === 'string'
      ? Buffer.from(text.length > 1024 ? text.slice(0, 1024) : text, 'utf8').subarray(0, 256)
      : text.subarray(0, 256);
  let at = -1;
  for (let i = 0; i < 5; i++) {
    at = bytes.indexOf(0x7c, at + 1);
    if (at < 0) return bytes;
  }
  return bytes.subarray(0, at + 1);
}

/** Hash tags by slot: `slotTags[s]` is a short string whose hash slot is `s`. */
let slotTags: string[] | undefined;

/** Builds {@link slotTags} (about 90,000 CRC16s, tens of ms): once per process, when a Cluster cache is made. */
function buildSlotTags(): string[] {
  if (!slotTags) {
    const tags: string[] = new Array(16_384);
    let found = 0;
    for (let i = 0; found < 16_384; i++) {
      const candidate = i.toString(36);
      const s = calculateSlot(candidate);
      if (tags[s] === undefined) {
        tags[s] = candidate;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags;
}

/**
 * The cache's own fill locks: one small key per key being loaded, `SET NX PX` with a random
 * token, no fencing counter (nothing outlives its ttl). The lock key lives in the entry's hash
 * slot (its `{hash tag}` is chosen for that slot), so one script can check the entry and take the
 * lock, and one can store the value and release it — and a delete can revoke the lock of a load
 * that started before it. Every state-changing step carries its caller's deadline to Redis.
 */
export class FillLocks {
  readonly #gate: RedisGate;
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #slotTags: string[] | undefined;

  constructor(gate: RedisGate, prefix: string, ttlMs: number) {
    this.#gate = gate;
    this.#prefix = prefix;
    this.#ttlMs = ttlMs;
    // Built here, not in a call: its time must not come out of any call's budget.
    this.#slotTags = isCluster(gate.redis) ? buildSlotTags() : undefined;
  }

  /** A fresh random token for one load. */
  static token(): string {
    return randomBytes(12).toString('base64url');
  }

  /** The fill lock key of an entry key: in the entry's slot as Redis sees it (`keyPrefix` included). */
  keyOf(entryKey: string, key: string): string {
    const tag = this.#slotTags ? this.#slotTags[slotOf(this.#gate.redis, entryKey)] : '0';
    return `${this.#prefix}:cl:{${tag}}:${key}`;
  }

  /**
   * Takes the lock unless someone holds it or (with `seen`) the entry's header is no longer
   * `seen`. Refused by Redis past the budget's deadline.
   */
  async acquire(
    entryKey: string,
    lockKey: string,
    token: string,
    seen: Buffer | null,
    budget: Budget,
  ): Promise<Acquired> {
    const gate = this.#gate;
    const node = gate.nodeOf(entryKey);
    const reply = (await gate.call('cache fill lock', node, budget, () =>
      runScript(
        gate.redis,
        'cacheFillLock',
        [entryKey, lockKey],
        [token, gate.serverDeadline(node, budget), this.#ttlMs, seen ? '1' : '0', seen ?? EMPTY],
      ),
    )) as [number, number, (number | string | null)?];
    gate.learn(node, Number(reply[1]));
    switch (reply[0]) {
      case 1:
        return { kind: 'acquired' };
      case 2:
        return { kind: 'changed', text: typeof reply[2] === 'string' ? reply[2] : null };
      case -1:
        return { kind: 'late' };
      default:
        return { kind: 'busy', pttl: Number(reply[2] ?? 0) };
    }
  }

  /**
   * Stores `text` and releases the lock, if the lock is still `token`'s. Resolves `stored`, `revoked`
   * (the key was deleted or set meanwhile, or the lock expired) or `late` (past the deadline).
   */
  async fill(
    entryKey: string,
    lockKey: string,
    token: string,
    text: string | Buffer,
    ttlMs: number,
    budget: Budget,
  ): Promise<'stored' | 'revoked' | 'late'> {
    const gate = this.#gate;
    const node = gate.nodeOf(entryKey);
    const reply = (await gate.call('cache fill', node, budget, () =>
      runScript(gate.redis, 'cacheFill', [entryKey, lockKey], [token, gate.serverDeadline(node, budget), text, ttlMs]),
    )) as [number, number];
    gate.learn(node, Number(reply[1]));
    return reply[0] === 1 ? 'stored' : reply[0] === -1 ? 'late' : 'revoked';
  }

  /** Extends the lock by its ttl (`release: false`) or releases it; resolves whether it was still ours. */
  async renew(lockKey: string, token: string, release: boolean, budget: Budget): Promise<boolean> {
    const gate = this.#gate;
    const reply = await gate.call(
      release ? 'cache fill unlock' : 'cache fill lock extend',
      gate.nodeOf(lockKey),
      budget,
      () => runScript(gate.redis, 'cacheFillUnlock', [lockKey], [token, release ? 0 : this.#ttlMs]),
    );
    return Number(reply) === 1;
  }
}
