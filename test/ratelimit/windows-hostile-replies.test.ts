import { describe, expect, it } from 'vitest';
import { RedscaleError } from '../../src/index.js';
import { decodeReply, planFor, splitBatchReply } from '../../src/ratelimit/protocol.js';

/**
 * A reply the script cannot have returned (another script under the SHA, a proxy's mangling, a
 * flat batch reply cut in the wrong place) must be an error, never a decision. These replies have
 * the right lengths and integers everywhere, so only what the scripts can say tells them apart.
 */
const windows = planFor(
  [
    { code: 's', limit: 10, window: 1_000 },
    { code: 'f', limit: 100, window: 60_000 },
  ],
  0,
  false,
);
// The general script without a block (a first-hit window beside them) never blocks either.
const generalNoBlock = planFor(
  [
    { code: 's', limit: 10, window: 1_000 },
    { code: 'a', limit: 5, window: 60_000 },
  ],
  0,
  false,
);
const NOW = 1_800_000_012_345;

describe('replies the lean multi-limit script cannot return', () => {
  it.each<[string, unknown]>([
    // ratelimit-windows.lua has no block key and never answers -2 ("blocked").
    ['a "blocked" refusal from a script without blocks', [-2, NOW, 900, 3, NOW + 1_000, 0, 4, NOW + 60_000, 0]],
    // Refused by a limit (-1), yet no limit refused and nothing to wait for.
    ['a refusal by a limit where every limit admitted', [-1, NOW, 0, 3, NOW + 1_000, 0, 4, NOW + 60_000, 0]],
    // A refusing limit always has a wait of at least 1 ms; a negative one is no wait.
    ['a refusal with a negative wait', [-1, NOW, -5, 3, NOW + 1_000, -5, 4, NOW + 60_000, 0]],
  ])('refuses %s with a RedscaleError', (_, reply) => {
    expect(() => decodeReply(reply, windows)).toThrow(RedscaleError);
  });

  it('refuses a "blocked" reply for any plan without a block', () => {
    expect(() => decodeReply([-2, NOW, 900, 3, NOW + 1_000, 0, 4, NOW + 60_000, 0], generalNoBlock)).toThrow(
      RedscaleError,
    );
  });

  it('a flat batch reply whose parts are each plausible but blocked/allowed-less is refused as a whole', () => {
    const admitted = [NOW, 3, 40];
    const hostile = [-2, NOW, 900, 3, NOW + 1_000, 0, 4, NOW + 60_000, 0];
    const parts = splitBatchReply([...admitted, ...hostile], windows, 2);
    // Split fine (lengths add up), but the second part must not become a decision.
    expect(parts).toHaveLength(2);
    expect(() => decodeReply(parts?.[1], windows)).toThrow(RedscaleError);
  });
});
