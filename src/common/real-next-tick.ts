/**
 * `process.nextTick` as it was when redscale loaded: fake timers installed by a test later (Jest's
 * fake `nextTick`) do not hold back what redscale defers to the end of a turn (the limiter's and
 * the lock calls' batching).
 */
export const realNextTick: (callback: () => void) => void = process.nextTick.bind(process);
