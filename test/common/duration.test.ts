import { describe, expect, it } from 'vitest';
import { formatDuration, InvalidOptionError, parseDuration } from '../../src/index.js';

describe('parseDuration', () => {
  it.each([
    [250, 250],
    [0, 0],
    ['250ms', 250],
    ['10s', 10_000],
    ['1.5s', 1_500],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    [' 2 s ', 2_000],
  ])('parses %j as %d ms', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  it.each([['5 parsecs'], ['-1s'], [-5], [Number.NaN], [Number.POSITIVE_INFINITY], ['10'], [''], [null], [{}]])(
    'rejects %j with an error naming the option and the value',
    (input) => {
      const error = (() => {
        try {
          parseDuration(input, 'window');
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(InvalidOptionError);
      expect((error as InvalidOptionError).code).toBe('ERR_INVALID_OPTION');
      expect((error as InvalidOptionError).option).toBe('window');
      expect((error as Error).message).toContain('"window"');
      expect((error as Error).message).toContain("'10s'");
    },
  );

  it('names the rejected string in the message', () => {
    expect(() => parseDuration('5 parsecs', 'window')).toThrow(/received "5 parsecs"/);
  });

  it('formats milliseconds back into a readable duration', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(1_500)).toBe('1.5s');
    expect(formatDuration(60_000)).toBe('1m');
    expect(formatDuration(86_400_000)).toBe('1d');
  });
});
