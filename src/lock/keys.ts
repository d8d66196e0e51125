import { slotOf } from '../client/cluster.js';
import { isCluster, type RedisLike } from '../client/types.js';
import { hashTag } from '../common/keys.js';

/**
 * The Redis hash tag of a resource name, as Redis would find it in a key: the text between the
 * first `{` and the first `}` after it, if not empty. `'{order:7}:items'` → `'order:7'`.
 */
export function resourceHashTag(resource: string): string | undefined {
  const open = resource.indexOf('{');
  if (open < 0) return undefined;
  const close = resource.indexOf('}', open + 1);
  if (close <= open + 1) return undefined;
  return resource.slice(open + 1, close);
}

/**
 * The part of a lock or semaphore key that names the resource, carrying its hash tag.
 *
 * - A plain name is its own hash tag, with braces and `%` escaped: `invoice:7` → `{invoice:7}`
 *   (the keys redscale 0.1 used).
 * - A name with a hash tag keeps it, so resources sharing a tag share a Cluster slot and can be
 *   locked together in one script: `{order:7}:items` → `{order:7}%7Border:7%7D:items}`. The whole
 *   escaped name follows, so the name stays unique, and a closing `}` (which the escaped name
 *   cannot contain) ends it, so no suffix appended to one resource's key makes another's.
 */
export function resourceKeyPart(resource: string): string {
  const tag = resourceHashTag(resource);
  if (tag === undefined) return hashTag(resource);
  return `{${tag}}${hashTag(resource).slice(1)}`;
}

/** Key of a resource's lock: `<prefix>:lock:<resource part>`. */
export function lockKeyOf(prefix: string, resource: string): string {
  return `${prefix}:lock:${resourceKeyPart(resource)}`;
}

/** Key of a resource's semaphore: `<prefix>:sem:<resource part>`. */
export function semaphoreKeyOf(prefix: string, resource: string): string {
  return `${prefix}:sem:${resourceKeyPart(resource)}`;
}

/** One slot's share of a multi-resource lock: resources whose keys one script can take together. */
export interface SlotGroup {
  /** The Cluster hash slot (0 on a standalone Redis). */
  slot: number;
  /** The resources in it, sorted by name. */
  resources: string[];
}

/**
 * Splits resources into the groups one script can lock atomically, in the order they are
 * acquired: one group on a standalone Redis; on a Cluster one per hash slot (as Redis sees the
 * key, the client's `keyPrefix` included), by ascending slot, resources sorted by name within it.
 * Every caller sorts the same way, so two callers wanting overlapping sets contend on their
 * lowest shared slot first instead of each holding what the other needs.
 */
export function slotGroups(redis: RedisLike, keyOf: (resource: string) => string, resources: string[]): SlotGroup[] {
  if (!isCluster(redis)) return resources.length ? [{ slot: 0, resources: [...resources].sort() }] : [];
  const bySlot = new Map<number, string[]>();
  for (const resource of resources) {
    const slot = slotOf(redis, keyOf(resource));
    const group = bySlot.get(slot);
    if (group) group.push(resource);
    else bySlot.set(slot, [resource]);
  }
  return [...bySlot.entries()].sort(([a], [b]) => a - b).map(([slot, group]) => ({ slot, resources: group.sort() }));
}
