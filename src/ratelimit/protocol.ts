import { RedisCommandError } from '../common/errors.js';
import type { ScriptName } from '../scripts/registry.js';
import type { Decision, LimitVerdict, Mode, RuleSpec } from './algorithms.js';

/**
 * The wire protocol between the limiter and its scripts: which script a limiter's shape uses,
 * the few arguments a call sends, and the short replies it reads back (see the headers of
 * src/scripts/lua/ratelimit*.lua). One limit without a block — the common case — uses a script
 * specialised for its algorithm, sends one key and three arguments (deadline, limit, window), and
 * on the admitted path reads one integer (GCRA: six arguments, with its burst, and three
 * integers back). Several fixed or sliding windows without a block use a lean script for those
 * shapes; everything else uses the general script.
 */

/** `used * 2^42 + now` packs an admitted call's count and server time into one integer. */
const PACK = 2 ** 42;

const SINGLE: Record<RuleSpec['code'], ScriptName> = {
  f: 'ratelimitFixed',
  a: 'ratelimitAnchored',
  s: 'ratelimitSliding',
  l: 'ratelimitLog',
  g: 'ratelimitGcra',
};

/** How one limiter talks to Redis, fixed at construction. */
export interface ScriptPlan {
  /** The script every call of this limiter runs. */
  script: ScriptName;
  /** Whether the single-limit protocol is used (one state key per identity, no block key). */
  single: boolean;
  /** Keys of one identity: the block key when blocking, then one state key per limit. */
  keysPerIdentity: number;
  /** Whether an identity's keys start with its block key. */
  blockKey: boolean;
  /** The limits, in order. */
  specs: readonly RuleSpec[];
  /** `blockFor` in ms (general script only; 0 means no block). */
  blockForMs: number;
  /** The block mode as the general script reads it: `r` until room, `x` exact. */
  blockMode: 'r' | 'x';
  /** Whether a batch's reply lays the identities' replies end to end (see {@link splitBatchReply}). */
  flat: boolean;
}

/** Chooses the script for a limiter's shape. */
export function planFor(specs: readonly RuleSpec[], blockForMs: number, exact: boolean): ScriptPlan {
  const single = specs.length === 1 && blockForMs === 0;
  const windows = !single && windowsOnly(specs, blockForMs);
  return {
    script: single ? SINGLE[(specs[0] as RuleSpec).code] : windows ? 'ratelimitWindows' : 'ratelimit',
    single,
    keysPerIdentity: specs.length + (blockForMs > 0 ? 1 : 0),
    blockKey: blockForMs > 0,
    specs,
    blockForMs,
    blockMode: exact ? 'x' : 'r',
    flat: windows,
  };
}

/** Several fixed windows on the clock or sliding windows, no block: the lean multi-limit script. */
function windowsOnly(specs: readonly RuleSpec[], blockForMs: number): boolean {
  return blockForMs === 0 && specs.every((spec) => (spec.code === 'f' || spec.code === 's') && !spec.exceeded);
}

/** How the scripts name a first-hit window's `whenExceeded` (in the shape argument, in place of `a`). */
const EXCEEDED = { keep: 'a', restart: 'r', backoff: 'b' } as const;

/** The operation argument: mode letter and cost (`''` stands for the common `c1`). */
export function operationArg(mode: Mode, cost: number): string {
  if (mode === 'consume') return cost === 1 ? '' : `c${cost}`;
  return `${mode === 'peek' ? 'p' : 'h'}${cost}`;
}

/** ARGV of one script call (shared by every identity of a batch). */
export function callArgs(
  plan: ScriptPlan,
  deadline: number,
  op: string,
  now: number | undefined,
): Array<string | number> {
  if (plan.single) {
    const { code, limit, window, exceeded, burst } = plan.specs[0] as RuleSpec;
    if (code === 'g') return [deadline, limit, window, op, now ?? '', burst ?? limit];
    if (exceeded) return [deadline, limit, window, op, now ?? '', EXCEEDED[exceeded]];
    if (now !== undefined) return [deadline, limit, window, op, now];
    return op === '' ? [deadline, limit, window] : [deadline, limit, window, op];
  }
  const args: Array<string | number> =
    plan.script === 'ratelimitWindows'
      ? [deadline, op, now ?? '']
      : [deadline, op, plan.blockForMs, plan.blockMode, now ?? ''];
  for (const spec of plan.specs) args.push(shapeArg(spec), spec.limit);
  return args;
}

/** A limit's shape as the general script reads it (see ratelimit.lua, ARGV[6..]). */
function shapeArg(spec: RuleSpec): string {
  if (spec.code === 'g') return `g${spec.window}:${spec.burst ?? spec.limit}`;
  return `${spec.exceeded ? EXCEEDED[spec.exceeded] : spec.code}${spec.window}`;
}

/**
 * The identities' replies in a batch's reply: the array itself, or for a {@link ScriptPlan.flat}
 * plan (no anchored or GCRA limits) the values cut at each identity's start (admitted: 1 + n
 * values, refused: 3 + 3n, failed: the error alone). An identity whose decision failed in the
 * script (its key holds another type) has the error (an `Error`) as its reply. `undefined` when
 * the reply is not `count` replies.
 */
export function splitBatchReply(reply: unknown, plan: ScriptPlan, count: number): unknown[] | undefined {
  if (!Array.isArray(reply)) return undefined;
  if (!plan.flat) return reply.length === count ? reply : undefined;
  const limits = plan.specs.length;
  const replies: unknown[] = [];
  let at = 0;
  while (at < reply.length && replies.length < count) {
    const head = reply[at];
    if (head instanceof Error) {
      replies.push(head);
      at += 1;
      continue;
    }
    const length = (head as number) >= 0 ? 1 + limits : 3 + 3 * limits;
    replies.push(reply.slice(at, at + length));
    at += length;
  }
  return at === reply.length && replies.length === count ? replies : undefined;
}

/** A script ran after its deadline and did nothing; `serverTime` is when it ran. */
export interface LateReply {
  late: true;
  serverTime: number;
}

/**
 * Reads a script's reply for one identity into a {@link Decision}, validating its shape: a
 * malformed reply (another script under our SHA, a proxy's mangling) is an error, never a guess.
 */
export function decodeReply(reply: unknown, plan: ScriptPlan): Decision | LateReply {
  if (typeof reply === 'number') {
    if (!Number.isSafeInteger(reply)) throw malformed(reply);
    if (reply < 0) return { late: true, serverTime: -reply };
    // Packed: an admitted call of a single-limit script.
    if (!plan.single || plan.specs[0]?.code === 'a' || plan.specs[0]?.code === 'g') throw malformed(reply);
    const used = Math.floor(reply / PACK);
    return admitted(reply - used * PACK, [used], plan);
  }
  if (!Array.isArray(reply) || reply.length === 0) throw malformed(reply);
  for (const value of reply) if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw malformed(reply);
  const values = reply as number[];
  const head = values[0] as number;
  const specs = plan.specs;
  if (head >= 0) {
    // Admitted: now, then per limit its count (and an anchored window's or a GCRA's reset).
    const extra = specs.reduce((sum, spec) => sum + (spec.code === 'a' || spec.code === 'g' ? 1 : 0), 0);
    if (values.length !== 1 + specs.length + extra) throw malformed(reply);
    return admitted(head, values.slice(1), plan);
  }
  // Refused: by a limit (-1), or blocked (-2, only a plan with a block key). A refusal always
  // has something to wait for, and a refusal by a limit names at least one refusing limit.
  if (values.length !== 3 + 3 * specs.length || (head !== -1 && !(head === -2 && plan.blockKey))) {
    throw malformed(reply);
  }
  if ((values[2] as number) < 1) throw malformed(reply);
  let refusing = false;
  const limits: LimitVerdict[] = [];
  for (let i = 0; i < specs.length; i++) {
    const retryAfter = values[3 * i + 5] as number;
    if (retryAfter < 0) throw malformed(reply);
    if (retryAfter > 0) refusing = true;
    limits.push({
      allowed: retryAfter === 0,
      used: values[3 * i + 3] as number,
      resetAt: values[3 * i + 4] as number,
      retryAfter,
    });
  }
  if (head === -1 && !refusing) throw malformed(reply);
  return {
    allowed: false,
    reason: head === -1 ? 1 : 2,
    now: values[1] as number,
    retryAfter: values[2] as number,
    limits,
  };
}

/** A decision for an admitted call from its server time and the counts (anchored and GCRA: count, reset). */
function admitted(now: number, counts: readonly number[], plan: ScriptPlan): Decision {
  const limits: LimitVerdict[] = [];
  let at = 0;
  for (const spec of plan.specs) {
    const used = counts[at++] as number;
    let resetAt: number;
    // An anchored window's end comes from Redis: a backoff may have made it longer than the rule's.
    if (spec.code === 'a' || spec.code === 'g') resetAt = counts[at++] as number;
    else if (spec.code === 'l') resetAt = now + spec.window;
    else resetAt = (Math.floor(now / spec.window) + 1) * spec.window;
    limits.push({ allowed: true, used, resetAt, retryAfter: 0 });
  }
  return { allowed: true, reason: 0, now, retryAfter: 0, limits };
}

function malformed(reply: unknown): RedisCommandError {
  const shown = JSON.stringify(reply)?.slice(0, 80);
  return new RedisCommandError('rate-limit check', new Error(`unexpected reply from the rate-limit script: ${shown}`));
}
