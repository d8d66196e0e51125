import { z } from 'zod';
import type { RedscaleError } from '../common/errors.js';

/**
 * A logger redscale reports to: pino, bunyan, winston, `console` or anything with `warn` and
 * `error` (and optionally `debug`). Each call gets an object first (`{ err, code, ...context }`,
 * pino's convention) and the message second.
 */
export interface Logger {
  /** Something went wrong and was absorbed (a Redis failure answered by a fallback). */
  warn(fields: object, message: string): void;
  /** Something went wrong that the caller may need to act on (a lock lost while held). */
  error(fields: object, message: string): void;
  /** Routine state changes (a circuit breaker closing again). */
  debug?(fields: object, message: string): void;
}

/** Schema of the `logger` option. */
export const loggerSchema = z.custom<Logger>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Logger).warn === 'function' &&
    typeof (value as Logger).error === 'function',
  { message: 'a logger with warn() and error() methods (pino, console, …)' },
);

/** Logs a RedscaleError at `level`, with its code and context as fields; a throwing logger is ignored. */
export function logError(
  logger: Logger | undefined,
  level: 'warn' | 'error',
  error: RedscaleError,
  fields?: Record<string, unknown>,
): void {
  if (!logger) return;
  try {
    logger[level]({ err: error, code: error.code, ...error.context, ...fields }, error.message);
  } catch {
    // A logger's failure must not become the primitive's.
  }
}

/** Logs a line at `level` (`debug` is skipped when the logger has none); a throwing logger is ignored. */
export function logLine(
  logger: Logger | undefined,
  level: 'warn' | 'error' | 'debug',
  message: string,
  fields: Record<string, unknown>,
): void {
  const log = logger?.[level];
  if (!log) return;
  try {
    log.call(logger, fields, message);
  } catch {
    // A logger's failure must not become the primitive's.
  }
}

/** Logs a node's circuit breaker opening (`warn`) or closing (`debug`), for `subject` ("cache", "rate limiter"). */
export function logBreaker(
  logger: Logger | undefined,
  subject: string,
  node: string,
  state: 'open' | 'closed',
  prefix: string,
): void {
  const message =
    state === 'open'
      ? `redscale: ${subject} skips Redis node ${node} (circuit open)`
      : `redscale: ${subject} uses Redis node ${node} again (circuit closed)`;
  logLine(logger, state === 'open' ? 'warn' : 'debug', message, { prefix, node });
}
