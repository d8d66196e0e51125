import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { withTimeout } from '../../src/common/deadline.js';
import { InvalidOptionError, RedscaleError } from '../../src/common/errors.js';
import { durationSchema, parseOptions, positiveInt } from '../../src/common/options.js';

const schema = z.strictObject({
  limits: z.array(z.strictObject({ limit: positiveInt(), window: durationSchema() })).min(1),
  mode: z.enum(['allow', 'deny']).default('allow'),
});

function failure(input: unknown): InvalidOptionError {
  try {
    parseOptions(schema, input, 'Example');
  } catch (error) {
    if (error instanceof InvalidOptionError) return error;
    throw error;
  }
  throw new Error('expected parseOptions to throw');
}

describe('parseOptions', () => {
  it('returns parsed values with defaults and durations in ms', () => {
    expect(parseOptions(schema, { limits: [{ limit: 3, window: '2s' }] }, 'Example')).toEqual({
      limits: [{ limit: 3, window: 2_000 }],
      mode: 'allow',
    });
  });

  it('names a nested option, its value and what is allowed', () => {
    const error = failure({ limits: [{ limit: 3, window: '5 parsecs' }] });
    expect(error.option).toBe('limits[0].window');
    expect(error.value).toBe('5 parsecs');
    expect(error.message).toBe(
      `redscale: invalid option "limits[0].window" for Example: received "5 parsecs"; expected a duration: milliseconds as a non-negative number, or a string like '250ms', '10s', '5m', '1h', '1d', from 1ms to 3650d.`,
    );
  });

  it('explains integer bounds', () => {
    const error = failure({ limits: [{ limit: 0, window: 1000 }] });
    expect(error.option).toBe('limits[0].limit');
    expect(error.message).toContain('received 0; expected a positive integer');
  });

  it('explains an empty array', () => {
    expect(failure({ limits: [] }).message).toContain(
      '"limits" for Example: received an empty array; expected at least 1 item(s)',
    );
  });

  it('lists the known options when one is misspelled', () => {
    const error = failure({ limits: [{ limit: 1, window: 1 }], mdoe: 'deny' });
    expect(error.option).toBe('mdoe');
    expect(error.message).toContain('expected one of the known options: limits, mode');
  });

  it('lists the allowed values of an enum', () => {
    expect(failure({ limits: [{ limit: 1, window: 1 }], mode: 'maybe' }).message).toContain(
      'expected one of "allow", "deny"',
    );
  });

  it('is a RedscaleError with a stable code', () => {
    const error = failure({});
    expect(error).toBeInstanceOf(RedscaleError);
    expect(error.code).toBe('ERR_INVALID_OPTION');
    expect(error.context).toMatchObject({ option: 'limits', where: 'Example' });
  });
});

describe('withTimeout', () => {
  it('rejects with ERR_TIMEOUT and swallows the late rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const slow = new Promise((_, reject) => setTimeout(() => reject(new Error('late')), 30));
      await expect(withTimeout(slow, 5, 'GET')).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('wraps a client error into ERR_REDIS and keeps it as cause', async () => {
    const cause = new Error('WRONGTYPE');
    const error = await withTimeout(Promise.reject(cause), 100, 'GET').catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'ERR_REDIS', cause });
  });
});
