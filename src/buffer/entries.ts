import type { Serializer } from '../cache/options.js';
import { type StandardSchemaV1, validate } from '../cache/schema.js';
import { messageOf } from '../common/errors.js';

/** One stream entry as a script returned it, checked for shape only. */
export interface RawEntry {
  /** The stream entry id, `<ms>-<seq>`. */
  entryId: string;
  /** Field/value pairs, flat. */
  fields: string[];
  /** How many times the group has delivered it, this delivery included. */
  deliveries: number;
}

/** The longest item id accepted (user ids are validated; a longer one read back is foreign). */
export const MAX_ID_LENGTH = 512;

const ENTRY_ID = /^\d+-\d+$/;

/** Whether a value is a stream entry id. */
export function isEntryId(value: unknown): value is string {
  return typeof value === 'string' && ENTRY_ID.test(value);
}

/**
 * Reads `{ { id, { field, value, … } [, deliveries] }, … }` from a script reply. Everything read
 * from Redis is untrusted: an element that is not shaped so is skipped (and counted), never a crash.
 */
export function parseEntries(value: unknown, defaultDeliveries = 1): { entries: RawEntry[]; skipped: number } {
  const entries: RawEntry[] = [];
  let skipped = 0;
  if (!Array.isArray(value)) return { entries, skipped: 0 };
  for (const element of value) {
    if (!Array.isArray(element) || !isEntryId(element[0]) || !Array.isArray(element[1])) {
      skipped++;
      continue;
    }
    const fields = element[1].filter((field): field is string => typeof field === 'string');
    const deliveries = element[2] === undefined ? defaultDeliveries : Number(element[2]);
    entries.push({
      entryId: element[0],
      fields: fields.length === element[1].length ? fields : [],
      deliveries: Number.isInteger(deliveries) && deliveries >= 1 ? deliveries : defaultDeliveries,
    });
  }
  return { entries, skipped };
}

/** An entry decoded into an item, or why it could not be. */
export type DecodedEntry<T> = { ok: true; id: string; item: T } | { ok: false; reason: string };

/**
 * Decodes an entry written by `enqueue`: exactly the fields `i` (item id) and `d` (payload),
 * the payload deserialized and, with a schema, validated. Anything else (a foreign XADD, a
 * payload this version cannot read) is reported as malformed.
 */
export async function decodeEntry<T>(
  fields: readonly string[],
  serializer: Serializer,
  schema: StandardSchemaV1<unknown, T> | undefined,
): Promise<DecodedEntry<T>> {
  if (fields.length !== 4) return { ok: false, reason: 'not an item written by enqueue (unexpected fields)' };
  const values = new Map([
    [fields[0], fields[1]],
    [fields[2], fields[3]],
  ]);
  const id = values.get('i');
  const payload = values.get('d');
  if (id === undefined || payload === undefined || id.length === 0 || id.length > MAX_ID_LENGTH) {
    return { ok: false, reason: 'not an item written by enqueue (no id or payload)' };
  }
  let item: unknown;
  try {
    item = serializer.deserialize(payload);
  } catch (error) {
    return { ok: false, reason: `the payload could not be deserialized: ${messageOf(error)}` };
  }
  if (!schema) return { ok: true, id, item: item as T };
  try {
    const checked = await validate(schema, item);
    return checked.ok ? { ok: true, id, item: checked.value } : { ok: false, reason: `schema: ${checked.message}` };
  } catch (error) {
    return { ok: false, reason: `schema: ${messageOf(error)}` };
  }
}

/** The server time (epoch ms) in a stream entry id. */
export function entryTime(entryId: string): number {
  return Number(entryId.slice(0, entryId.indexOf('-')));
}
