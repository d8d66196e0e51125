import { describe, expect, it } from 'vitest';
import { RedscaleError } from '../../src/index.js';
import { callArgs, decodeReply, operationArg, planFor, splitBatchReply } from '../../src/ratelimit/protocol.js';

const fixed = planFor([{ code: 'f', limit: 10, window: 60_000 }], 0, false);
const anchored = planFor([{ code: 'a', limit: 10, window: 60_000 }], 0, false);
const several = planFor(
  [
    { code: 's', limit: 10, window: 1_000 },
    { code: 'a', limit: 5, window: 60_000, exceeded: 'restart' },
  ],
  5_000,
  true,
);
const windows = planFor(
  [
    { code: 's', limit: 10, window: 1_000 },
    { code: 'f', limit: 100, window: 60_000 },
  ],
  0,
  false,
);
const bucket = planFor([{ code: 'g', limit: 10, window: 1_000, burst: 20 }], 0, false);
const NOW = 1_800_000_012_345;

describe('the limiter wire protocol', () => {
  it('several fixed or sliding windows without a block: the lean script, three arguments and the shapes', () => {
    expect(windows).toMatchObject({ script: 'ratelimitWindows', single: false, keysPerIdentity: 2, flat: true });
    expect(callArgs(windows, 123, '', undefined)).toEqual([123, '', '', 's1000', 10, 'f60000', 100]);
    // A block, a first-hit window or GCRA beside them: the general script.
    expect(planFor(windows.specs, 1_000, false).script).toBe('ratelimit');
    expect(planFor([...windows.specs, { code: 'a', limit: 5, window: 60_000 }], 0, false).script).toBe('ratelimit');
  });

  it("cuts a flat batch reply at each identity's start, and refuses one that does not add up", () => {
    const admitted = [NOW, 3, 40];
    const refused = [-1, NOW, 500, 10, NOW + 1_000, 500, 41, NOW + 60_000, 0];
    expect(splitBatchReply([...admitted, ...refused, ...admitted], windows, 3)).toEqual([admitted, refused, admitted]);
    expect(splitBatchReply([...admitted, ...refused], windows, 3)).toBeUndefined();
    expect(splitBatchReply([...admitted, ...refused, NOW], windows, 2)).toBeUndefined();
    expect(splitBatchReply([...admitted, ...refused.slice(0, 5)], windows, 2)).toBeUndefined();
    expect(splitBatchReply('OK', windows, 1)).toBeUndefined();
    // Not flat: an array of the identities' replies.
    expect(splitBatchReply([admitted, refused], several, 2)).toEqual([admitted, refused]);
    expect(splitBatchReply([admitted], several, 2)).toBeUndefined();
    // Each part is still checked by decodeReply: a string where a number belongs is an error.
    const [part] = splitBatchReply(['x', 1, 2, 3, 4, 5, 6, 7, 8], windows, 1) ?? [];
    expect(() => decodeReply(part, windows)).toThrow(/unexpected reply/);
  });

  it('sends only what a call needs', () => {
    expect(fixed).toMatchObject({ script: 'ratelimitFixed', single: true, keysPerIdentity: 1, blockKey: false });
    expect(callArgs(fixed, 123, operationArg('consume', 1), undefined)).toEqual([123, 10, 60_000]);
    expect(callArgs(fixed, 123, operationArg('hit', 2), undefined)).toEqual([123, 10, 60_000, 'h2']);
    expect(several).toMatchObject({ script: 'ratelimit', single: false, keysPerIdentity: 3, blockKey: true });
    expect(callArgs(several, 123, operationArg('peek', 1), 77)).toEqual([
      123,
      'p1',
      5_000,
      'x',
      77,
      's1000',
      10,
      'r60000',
      5,
    ]);
  });

  it('reads the packed integer of an admitted call, and the records of the others', () => {
    expect(decodeReply(3 * 2 ** 42 + NOW, fixed)).toEqual({
      allowed: true,
      reason: 0,
      now: NOW,
      retryAfter: 0,
      limits: [{ allowed: true, used: 3, resetAt: Math.ceil(NOW / 60_000) * 60_000, retryAfter: 0 }],
    });
    // An anchored window's end is Redis's (a backoff may have lengthened it), not start + window.
    expect(decodeReply([NOW, 4, NOW + 120_000], anchored)).toMatchObject({
      allowed: true,
      limits: [{ used: 4, resetAt: NOW + 120_000 }],
    });
    expect(decodeReply([-2, NOW, 900, 10, NOW + 1, 0, 5, NOW + 2, 3], several)).toMatchObject({
      allowed: false,
      reason: 2,
      retryAfter: 900,
      limits: [
        { allowed: true, used: 10, resetAt: NOW + 1 },
        { allowed: false, used: 5, retryAfter: 3 },
      ],
    });
    expect(decodeReply(-NOW, fixed)).toEqual({ late: true, serverTime: NOW });
  });

  it('GCRA alone: its own script, its burst on the wire, and its reset read back', () => {
    expect(bucket).toMatchObject({ script: 'ratelimitGcra', single: true, keysPerIdentity: 1 });
    expect(callArgs(bucket, 123, operationArg('consume', 1), undefined)).toEqual([123, 10, 1_000, '', '', 20]);
    expect(callArgs(bucket, 123, operationArg('peek', 3), 77)).toEqual([123, 10, 1_000, 'p3', 77, 20]);
    expect(decodeReply([NOW, 4, NOW + 400], bucket)).toMatchObject({
      allowed: true,
      limits: [{ used: 4, resetAt: NOW + 400 }],
    });
    expect(() => decodeReply(3 * 2 ** 42 + NOW, bucket)).toThrow(RedscaleError);
    expect(() => decodeReply([NOW, 4], bucket)).toThrow(RedscaleError);
  });

  it.each<[string, unknown, ReturnType<typeof planFor>]>([
    ['a string', 'OK', fixed],
    ['null', null, fixed],
    ['an empty array', [], fixed],
    ['a fraction', 1.5, fixed],
    ['an integer past 2^53', 2 ** 60, fixed],
    ['a packed integer for a first-hit window (which never packs)', 3 * 2 ** 42 + NOW, anchored],
    ['a packed integer for several limits', 3 * 2 ** 42 + NOW, several],
    ['an admitted record of the wrong length', [NOW, 1], anchored],
    ['a refusal of the wrong length', [-1, NOW, 5], fixed],
    ['an unknown reason', [-7, NOW, 5, 1, NOW, 5], fixed],
    ['a string inside', [NOW, '3'], fixed],
    ['a nested array', [NOW, [3]], fixed],
  ])('refuses %s with a RedscaleError (a foreign or mangled reply is never guessed at)', (_, reply, plan) => {
    expect(() => decodeReply(reply, plan)).toThrow(RedscaleError);
    expect(() => decodeReply(reply, plan)).toThrow(/unexpected reply from the rate-limit script/);
  });
});

/**
 * A batch's reply in which an identity's decision failed in the script (its key holds another
 * type): the error is that identity's whole reply, and nothing shifts to another caller.
 */
describe('splitBatchReply with an identity that failed', () => {
  const error = (message: string) => new Error(message);
  const text = (reply: unknown) => (reply instanceof Error ? reply.message : reply);

  it('flat: an error first, last or between identities is that identity alone', () => {
    const replies = splitBatchReply([error('WRONGTYPE a'), 5, 1, 2, error('WRONGTYPE c')], windows, 3);
    expect(replies?.map(text)).toEqual(['WRONGTYPE a', [5, 1, 2], 'WRONGTYPE c']);
  });

  it('flat: one error too many or too few fails the whole batch', () => {
    expect(splitBatchReply([error('x'), 5, 1, 2], windows, 1)).toBeUndefined();
    expect(splitBatchReply([error('x'), error('y'), 5, 1, 2], windows, 2)).toBeUndefined();
    expect(splitBatchReply([error('x')], windows, 2)).toBeUndefined();
  });

  it("flat: an error among an identity's values is that identity's malformed reply, the next stays aligned", () => {
    const replies = splitBatchReply([5, error('x'), 2, 6, 1, 1], windows, 2) as unknown[];
    expect(() => decodeReply(replies[0], windows)).toThrow(RedscaleError);
    expect(decodeReply(replies[1], windows)).toMatchObject({ allowed: true, now: 6 });
  });

  it("array of replies: an error is that identity's reply; one nested deeper is malformed", () => {
    const replies = splitBatchReply([error('x'), [5, 1, 1]], several, 2) as unknown[];
    expect(replies[0]).toBeInstanceOf(Error);
    expect(() => decodeReply([5, error('x'), 1], several)).toThrow(RedscaleError);
    expect(splitBatchReply([error('x')], several, 2)).toBeUndefined();
  });
});
