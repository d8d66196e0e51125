import { describe, expect, it } from 'vitest';
import { SAMPLE_LIFE_MS, ServerClock } from '../../src/common/server-clock.js';

describe('ServerClock', () => {
  it('estimates the server time from a sample, never ahead of it', () => {
    const clock = new ServerClock();
    expect(clock.learned).toBe(false);
    // The server said 1,000,000 ms; the reply arrived at local time 500.
    clock.learn(1_000_000, 500);
    expect(clock.learned).toBe(true);
    expect(clock.serverTimeAt(500)).toBe(1_000_000);
    expect(clock.serverTimeAt(750)).toBe(1_000_250);
  });

  it('keeps the most advanced recent sample: one slow reply does not pull deadlines early', () => {
    const clock = new ServerClock();
    clock.learn(1_000_000, 500);
    // A reply that spent 200 ms on the way: it says less about the server's time.
    clock.learn(1_000_100, 800);
    expect(clock.serverTimeAt(800)).toBe(1_000_300);
    // A faster sample replaces it.
    clock.learn(1_000_310, 800);
    expect(clock.serverTimeAt(800)).toBe(1_000_310);
  });

  it('takes a slower sample once the best one is old (the server clock may have been set back)', () => {
    const clock = new ServerClock();
    clock.learn(1_000_000, 0);
    clock.learn(900_000 + SAMPLE_LIFE_MS, SAMPLE_LIFE_MS + 1);
    expect(clock.serverTimeAt(SAMPLE_LIFE_MS + 1)).toBe(900_000 + SAMPLE_LIFE_MS);
  });

  it('ignores samples that are not numbers', () => {
    const clock = new ServerClock();
    clock.learn(Number.NaN, 1);
    expect(clock.learned).toBe(false);
  });
});
