import type { RedisLike } from '../client/types.js';
import { untilDeadline } from '../common/deadline.js';
import { RedisCommandError, type RedscaleError, toRedisError } from '../common/errors.js';
import type { ServerClocks } from '../common/server-clock.js';
import { coalescedEval } from '../scripts/coalesce.js';
import { lockKeyOf, slotGroups } from './keys.js';
import { GRANTED, runBeforeDeadline } from './timed-script.js';
import type { AttemptResult } from './waiting.js';

/** Where a lock set lives and how it reports. */
export interface LockSetTarget {
  /** The client the locks live behind. */
  redis: RedisLike;
  /** The per-node server clocks of the lock that owns the set. */
  clocks: ServerClocks;
  /** The lock's key namespace. */
  prefix: string;
  /** Longest one Redis call may take, in ms. */
  timeoutMs: number;
  /** Receives failures the set absorbs (a roll back or undo that failed). */
  onError: ((error: RedscaleError) => void) | undefined;
}

interface Group {
  resources: string[];
  lockKeys: string[];
  /** Lock and fence key of each resource, in pairs, as the acquire script takes them. */
  acquireKeys: string[];
}

/**
 * The locks of one or several resources, split into the groups one script can take atomically:
 * all of them on a standalone Redis or when they share a hash tag, else one group per Cluster
 * slot, taken in ascending slot order (see {@link slotGroups}). Acquiring is all or nothing: when
 * a group is held by someone else, the groups already taken are released before the caller waits.
 */
export class LockSet {
  /** The resources, in acquisition order. */
  readonly resources: readonly string[];
  /** What the set is called in errors: the resource, or the resources joined by commas. */
  readonly name: string;
  readonly #target: LockSetTarget;
  readonly #groups: Group[];

  constructor(target: LockSetTarget, resources: readonly string[]) {
    this.#target = target;
    if (resources.length === 1) {
      // The common case, one resource: one group on any topology, without the grouping's copies.
      const resource = resources[0] as string;
      const members = [resource];
      const key = lockKeyOf(target.prefix, resource);
      this.#groups = [{ resources: members, lockKeys: [key], acquireKeys: [key, `${key}:fence`] }];
      this.resources = members;
      this.name = resource;
      return;
    }
    const keyOf = (resource: string) => lockKeyOf(target.prefix, resource);
    this.#groups = slotGroups(target.redis, keyOf, [...resources]).map(({ resources: members }) => {
      const lockKeys = members.map(keyOf);
      return { resources: members, lockKeys, acquireKeys: lockKeys.flatMap((key) => [key, `${key}:fence`]) };
    });
    this.resources = this.#groups.flatMap((group) => group.resources);
    this.name = this.resources.join(', ');
  }

  /** One lock key per slot group: where to ask how far a grant has replicated. */
  get firstKeys(): string[] {
    return this.#groups.map((group) => group.lockKeys[0] as string);
  }

  /** How many scripts (round trips) acquiring takes: one per slot group. */
  get groupCount(): number {
    return this.#groups.length;
  }

  /**
   * One attempt at taking every lock with `token` before `deadline`. Resolves the fencing token of
   * each resource, or how long a holder keeps the busy one. After a failure, whatever the attempt
   * may still grant is released by its token (queued behind it on each connection).
   */
  async acquire(token: string, ttlMs: number, deadline: number): Promise<AttemptResult<Map<string, number>>> {
    const { redis, clocks, timeoutMs } = this.#target;
    const fences = new Map<string, number>();
    const taken: Group[] = [];
    for (const group of this.#groups) {
      let granted = false;
      let busyForMs: number | undefined;
      try {
        const reply = await runBeforeDeadline(
          redis,
          clocks,
          'lockAcquire',
          group.acquireKeys,
          [token, ttlMs],
          deadline,
          timeoutMs,
          'lock acquire',
          { resource: this.name },
        );
        if (reply.status === GRANTED) {
          if (reply.values.length !== group.resources.length) {
            throw new RedisCommandError('lock acquire', new Error('the reply has the wrong number of fencing tokens'), {
              resource: this.name,
            });
          }
          group.resources.forEach((resource, i) => {
            fences.set(resource, reply.values[i] as number);
          });
          granted = true;
        } else {
          busyForMs = reply.values[0];
        }
      } catch (error) {
        this.undo(token);
        throw toRedisError('lock acquire', error, { resource: this.name });
      }
      if (!granted) {
        if (taken.length) await this.#rollBack(taken, token, deadline);
        return { busyForMs };
      }
      taken.push(group);
    }
    return { acquired: fences };
  }

  /** Extends every lock still held by `token`; `false` when one of them is no longer held. */
  async extend(token: string, ttlMs: number, deadline: number): Promise<boolean> {
    const { redis, clocks, timeoutMs } = this.#target;
    const replies = await Promise.all(
      this.#groups.map((group) =>
        runBeforeDeadline(
          redis,
          clocks,
          'lockExtend',
          group.lockKeys,
          [token, ttlMs],
          deadline,
          timeoutMs,
          'lock extend',
          {
            resource: this.name,
          },
        ),
      ),
    );
    return replies.every((reply) => reply.status === GRANTED);
  }

  /** Releases every lock still held by `token`; `true` when all of them were. */
  async release(token: string, deadline: number): Promise<boolean> {
    const only = this.#groups.length === 1 ? this.#groups[0] : undefined;
    if (only) return this.#release(only, token, deadline);
    const released = await Promise.all(this.#groups.map((group) => this.#release(group, token, deadline)));
    return released.every(Boolean);
  }

  /** Releases, without waiting, whatever `token` holds or may still be granted. */
  undo(token: string): void {
    const { redis, onError } = this.#target;
    for (const group of this.#groups) {
      coalescedEval(redis, 'lockRelease', group.lockKeys, [token]).catch((error: unknown) => {
        onError?.(toRedisError('lock release after a failed acquire', error, { resource: this.name }));
      });
    }
  }

  async #release(group: Group, token: string, deadline: number): Promise<boolean> {
    const { redis, timeoutMs } = this.#target;
    const released = await untilDeadline(
      coalescedEval(redis, 'lockRelease', group.lockKeys, [token]),
      deadline,
      timeoutMs,
      'lock release',
      { resource: this.name },
    );
    return released === group.lockKeys.length;
  }

  /** Gives back the groups an all-or-nothing attempt took before finding one held. */
  async #rollBack(taken: Group[], token: string, deadline: number): Promise<void> {
    await Promise.all(
      taken.map((group) =>
        this.#release(group, token, deadline).catch((error: unknown) => {
          // The release is still on its way (or Redis is down): the locks expire by their ttl.
          this.#target.onError?.(toRedisError('lock release (roll back)', error, { resource: this.name }));
        }),
      ),
    );
  }
}
