import { expect } from 'vitest';

/** What one request looked like from the client: status and the headers a scenario watches. */
export interface Observation {
  step: string;
  status: number;
  headers: Record<string, string | undefined>;
  body?: unknown;
}

/** Records observations, and waits between steps (real time: Redis counts by its own clock). */
export class Recorder {
  readonly observations: Observation[] = [];
  readonly #watched: readonly string[];

  constructor(watched: readonly string[]) {
    this.#watched = watched;
  }

  /** Keeps the status, the watched headers (lower-case names) and, if given, the body. */
  record(step: string, status: number, headers: Record<string, unknown>, body?: unknown): void {
    const kept: Record<string, string | undefined> = {};
    for (const name of this.#watched) {
      const value = headers[name];
      kept[name] = value === undefined ? undefined : String(value);
    }
    this.observations.push({ step, status, headers: kept, ...(body !== undefined && { body }) });
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs one scenario once per storage, all at the same time (so they see the same moments), and
 * returns each storage's observations.
 */
export async function runEach<Name extends string>(
  storages: readonly Name[],
  scenario: (storage: Name) => Promise<Observation[]>,
): Promise<Record<Name, Observation[]>> {
  const runs = await Promise.all(storages.map(async (storage) => [storage, await scenario(storage)] as const));
  return Object.fromEntries(runs) as Record<Name, Observation[]>;
}

/** A header value with the numbers that are times (seconds) taken out, and the numbers themselves. */
function splitTimes(value: string | undefined, timeHeader: boolean): { shape: string | undefined; times: number[] } {
  if (value === undefined) return { shape: undefined, times: [] };
  if (timeHeader) return { shape: '#', times: [Number(value)] };
  // Structured headers: `reset=N` (draft-7), `t=N` (draft-8) are times; the rest must match exactly.
  const times: number[] = [];
  const shape = value.replace(/\b(reset|t)=(\d+)/g, (_match, name: string, seconds: string) => {
    times.push(Number(seconds));
    return `${name}=#`;
  });
  return { shape, times };
}

/**
 * Asserts that `actual` saw what `expected` saw, request by request: the same statuses, the same
 * headers (present or absent) and bodies, and times (seconds) within `toleranceS` of each other.
 */
export function expectSameObservations(
  actual: Observation[],
  expected: Observation[],
  options: { timeHeaders: readonly string[]; toleranceS?: number; label: string },
): void {
  const tolerance = options.toleranceS ?? 1;
  expect(
    actual.map((o) => `${o.step}: ${o.status}`),
    `${options.label}: statuses`,
  ).toEqual(expected.map((o) => `${o.step}: ${o.status}`));
  expected.forEach((want, i) => {
    const got = actual[i] as Observation;
    for (const [name, wantValue] of Object.entries(want.headers)) {
      const isTime = options.timeHeaders.includes(name);
      const a = splitTimes(got.headers[name], isTime);
      const b = splitTimes(wantValue, isTime);
      const where = `${options.label}: step "${want.step}", header ${name} (${got.headers[name]} vs ${wantValue})`;
      expect(a.shape, where).toEqual(b.shape);
      a.times.forEach((time, j) => {
        expect(Math.abs(time - (b.times[j] as number)), where).toBeLessThanOrEqual(tolerance);
      });
    }
    if (want.body !== undefined) expect(got.body, `${options.label}: step "${want.step}", body`).toEqual(want.body);
  });
}
