import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { z } from 'zod';
import { positiveInt } from '../common/options.js';

/** Maps a raw key, identity or resource to a small group name, or `undefined` for none. */
export type KeyGrouper = (key: string) => string | undefined;

/** Options for {@link instrumentRedscale}. */
export interface OtelOptions {
  /** Where metrics go. Default: the global MeterProvider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where spans go. Default: the global TracerProvider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Record metrics. Default `true`. */
  metrics?: boolean;
  /** Record a span per operation (limiter check, cache call, loader run, lock call, health check). Default `true`. */
  traces?: boolean;
  /**
   * Puts keys (cache keys, limiter identities, lock resources) into a few groups, recorded as
   * the `redscale.key_group` attribute: `[[/^user:/, 'user'], [/^session:/, 'session']]` (the
   * first pattern that matches names the group), or a function. A raw key is never an attribute.
   * Default: no groups (no key attribute at all).
   */
  keyGroups?: Array<[RegExp, string]> | KeyGrouper;
  /**
   * Most distinct group names a `keyGroups` function may produce; later ones are recorded as
   * `'other'`, so a function that leaks raw keys cannot blow up the series count. Default `50`.
   */
  maxKeyGroups?: number;
}

const providerSchema = <T>(method: string) =>
  z.custom<T>(
    (value) =>
      typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function',
    {
      message: `an OpenTelemetry provider with ${method}()`,
    },
  );

/** Schema of {@link OtelOptions}. */
export const otelOptionsSchema = z
  .strictObject({
    meterProvider: providerSchema<MeterProvider>('getMeter').optional(),
    tracerProvider: providerSchema<TracerProvider>('getTracer').optional(),
    metrics: z.boolean().default(true),
    traces: z.boolean().default(true),
    keyGroups: z
      .union([
        z.array(
          z.tuple([
            z.instanceof(RegExp),
            z.string().refine((name) => name.length > 0 && name.length <= 64, {
              message: 'a group name of 1 to 64 characters',
            }),
          ]),
        ),
        z.custom<KeyGrouper>((value) => typeof value === 'function', { message: 'a function' }),
      ])
      .optional(),
    maxKeyGroups: positiveInt().default(50),
  })
  .prefault({});

/** Resolves `keyGroups` to one bounded function (or `undefined`: no key attribute). */
export function keyGrouper(
  keyGroups: Array<[RegExp, string]> | KeyGrouper | undefined,
  maxGroups: number,
): KeyGrouper | undefined {
  if (!keyGroups) return undefined;
  if (Array.isArray(keyGroups)) {
    // Patterns with /g or /y keep state between test() calls; copies without them do not.
    const rules = keyGroups.map(
      ([pattern, name]) => [new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, '')), name] as const,
    );
    // Hot keys are grouped again and again: remember the last few thousand answers.
    const known = new Map<string, string | undefined>();
    return (key) => {
      if (known.has(key)) return known.get(key);
      const group = rules.find(([pattern]) => pattern.test(key))?.[1];
      if (known.size >= 4_096) known.clear();
      known.set(key, group);
      return group;
    };
  }
  const seen = new Set<string>();
  return (key) => {
    let group: unknown;
    try {
      group = keyGroups(key);
    } catch {
      return 'other';
    }
    if (typeof group !== 'string' || group === '') return undefined;
    if (seen.has(group)) return group;
    if (seen.size >= maxGroups || group.length > 64) return 'other';
    seen.add(group);
    return group;
  };
}
