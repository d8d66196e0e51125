import { InvalidOptionError } from './errors.js';

/**
 * A length of time: milliseconds as a number, or a string with a unit: `'250ms'`, `'10s'`,
 * `'5m'`, `'1h'`, `'1d'` (decimals allowed: `'1.5s'`).
 */
export type Duration = number | `${number}${DurationUnit}` | `${number} ${DurationUnit}`;

type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

const UNIT_MS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** What a duration may look like, for error messages. */
export const DURATION_EXPECTED =
  "a duration: milliseconds as a non-negative number, or a string like '250ms', '10s', '5m', '1h', '1d'";

/** Parses a duration to whole milliseconds, or returns `undefined` when it is not one. */
export function tryParseDuration(input: unknown): number | undefined {
  if (typeof input === 'number') {
    return Number.isFinite(input) && input >= 0 ? Math.round(input) : undefined;
  }
  if (typeof input !== 'string') return undefined;
  const match = DURATION_PATTERN.exec(input.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/**
 * Parses a duration to whole milliseconds.
 *
 * @param input - `250`, `'250ms'`, `'10s'`, `'5m'`, `'1h'`, `'1d'`
 * @param option - the option's name, used in the error message
 * @throws {@link InvalidOptionError} naming the option and the value when `input` is not a duration
 */
export function parseDuration(input: Duration | unknown, option = 'duration'): number {
  const ms = tryParseDuration(input);
  if (ms === undefined) throw new InvalidOptionError(option, input, DURATION_EXPECTED);
  return ms;
}

/** Formats milliseconds for messages: `1500` → `'1.5s'`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit];
    if (ms >= size && (ms % size === 0 || unit === 's')) return `${+(ms / size).toFixed(3)}${unit}`;
  }
  return `${ms}ms`;
}
