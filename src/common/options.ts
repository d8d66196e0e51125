import { z } from 'zod';
import { isRedisLike, type RedisLike } from '../client/types.js';
import { DURATION_EXPECTED, formatDuration, tryParseDuration } from './duration.js';
import { InvalidOptionError } from './errors.js';

const parsedEmpty = new WeakMap<z.ZodType, unknown>();

/**
 * {@link parseOptions} for per-call options, which are usually left out: `undefined` or an
 * object with no keys gets what `{}` parses to, parsed once per schema and frozen (callers copy,
 * never change it), so a hot path pays no schema run for options it was not given.
 */
export function parseCallOptions<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  if (!isEmptyOptions(input)) return parseOptions(schema, input, where);
  let parsed = parsedEmpty.get(schema) as z.output<S> | undefined;
  if (parsed === undefined) {
    parsed = Object.freeze(parseOptions(schema, {}, where)) as z.output<S>;
    parsedEmpty.set(schema, parsed);
  }
  return parsed;
}

/** `undefined`, or a non-array object with no enumerable keys, own or inherited (the schema reads both). */
function isEmptyOptions(input: unknown): boolean {
  if (input === undefined) return true;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return false;
  for (const _ in input) return false;
  return true;
}

/**
 * Validates `input` against `schema` and returns the parsed value. The first problem becomes an
 * {@link InvalidOptionError} that names the option (as a dotted path), the value and what is
 * allowed, so a bad option fails at construction with a message a user can act on.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, where: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  // A misspelt option usually also shows up as a missing one: name the misspelling first.
  const first =
    result.error.issues.find((candidate) => candidate.code === 'unrecognized_keys') ?? result.error.issues[0];
  const issue = first && deepestIssue(first);
  if (!issue) throw new InvalidOptionError('(options)', input, 'valid options', where);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    const path = formatPath([...issue.path, key]);
    const owner = valueAt(input, issue.path);
    const known = ownerKeys(schema, issue.path);
    const expected = known.length ? `one of the known options: ${known.join(', ')}` : 'no such option';
    throw new InvalidOptionError(path, valueAt(owner, [key]), expected, where);
  }
  const path = issue.path.length ? formatPath(issue.path) : '(options)';
  throw new InvalidOptionError(path, valueAt(input, issue.path), expectedFrom(issue), where);
}

/**
 * For a value that matched none of a union's branches, the problem found deepest inside it
 * (for `[{ limit: 5 }]` against "a rule or an array of rules": the array's first item).
 */
function deepestIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    for (const candidate of branch) {
      const deep = deepestIssue(candidate);
      if (!best || deep.path.length > best.path.length) best = deep;
    }
  }
  return best ? { ...best, path: [...issue.path, ...best.path] } : issue;
}

function expectedFrom(issue: z.core.$ZodIssue): string {
  // Custom messages in redscale's schemas already say what is allowed; zod's defaults are reworded.
  if (issue.code === 'custom') return issue.message;
  if (issue.code === 'invalid_type') return `a value of type ${issue.expected}`;
  if (issue.code === 'too_small') {
    const bound = issue.inclusive ? 'at least' : 'more than';
    if (issue.origin === 'array') return `${bound} ${issue.minimum} item(s)`;
    if (issue.origin === 'string') return `${bound} ${issue.minimum} character(s)`;
    return `a number ${bound} ${issue.minimum}`;
  }
  if (issue.code === 'too_big') {
    const bound = issue.inclusive ? 'at most' : 'less than';
    if (issue.origin === 'array') return `${bound} ${issue.maximum} item(s)`;
    if (issue.origin === 'string') return `${bound} ${issue.maximum} character(s)`;
    return `a number ${bound} ${issue.maximum}`;
  }
  if (issue.code === 'invalid_value') return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(options)';
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

function ownerKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  for (const part of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = current.shape[String(part)] as z.ZodType | undefined;
    else if (current instanceof z.ZodArray) current = current.element as z.ZodType;
    else return [];
  }
  current = unwrap(current);
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let current = schema;
  while (
    current instanceof z.ZodOptional ||
    current instanceof z.ZodDefault ||
    current instanceof z.ZodNullable ||
    current instanceof z.ZodPipe
  ) {
    current = (current instanceof z.ZodPipe ? current.in : current.unwrap()) as z.ZodType;
  }
  return current;
}

/**
 * A duration option (number of ms or `'10s'`-style string), parsed to milliseconds, between `min`
 * (default 1 ms, or 0 with `allowZero`) and `max` (default {@link MAX_DURATION_MS}).
 */
export function durationSchema(options: { min?: number; max?: number; allowZero?: boolean } = {}) {
  const min = options.min ?? (options.allowZero ? 0 : 1);
  const max = options.max ?? MAX_DURATION_MS;
  const expected = `${DURATION_EXPECTED}, ${min > 0 ? `from ${formatDuration(min)}` : 'from 0'} to ${formatDuration(max)}`;
  return z.unknown().transform((value, ctx) => {
    const ms = tryParseDuration(value);
    if (ms === undefined || ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: expected });
      return z.NEVER;
    }
    return ms;
  });
}

/**
 * The longest duration an option accepts unless it says otherwise: 10 years (365-day years), far
 * beyond any sensible ttl or window and well inside what Redis expiries and timestamps can hold.
 */
export const MAX_DURATION_MS = 10 * 365 * 86_400_000;

/**
 * The longest a Node timer can wait, 2^31 - 1 ms (about 24.8 days): the bound of any duration
 * redscale arms a timer for (timeouts, lock ttls). Longer, and `setTimeout` fires at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A key namespace: non-empty, no braces (redscale adds its own hash tags). */
export const prefixSchema = z.string().refine((value) => value.length > 0 && !/[{}]/.test(value), {
  message: 'a non-empty string without "{" or "}" (redscale adds its own Cluster hash tags)',
});

/** A positive integer with an error message that says so. */
export function positiveInt(what = 'a positive integer (1 or more)') {
  return z.number().refine((n) => Number.isInteger(n) && n >= 1, { message: what });
}

/** A ratio between 0 and 1 inclusive. */
export const ratioSchema = z.number().refine((n) => n >= 0 && n <= 1, { message: 'a ratio between 0 and 1' });

/** The `redis` option every primitive takes. */
export const redisClientSchema = z.custom<RedisLike>(isRedisLike, {
  message: 'an ioredis Redis or Cluster instance (see createClient())',
});
