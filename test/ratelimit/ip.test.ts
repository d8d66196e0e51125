import { ipKeyGenerator } from 'express-rate-limit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipKey } from '../../src/index.js';

describe('ipKey', () => {
  it.each([
    ['203.0.113.7', undefined, '203.0.113.7'],
    ['::ffff:203.0.113.7', undefined, '203.0.113.7'],
    // The hex form of a mapped address is the same address (it once fell into ::1's bucket).
    ['::ffff:102:304', undefined, '1.2.3.4'],
    ['::1.2.3.4', undefined, '1.2.3.4'],
    ['2001:db8:abcd:12ff:1:2:3:4', undefined, '2001:db8:abcd:1200::/56'],
    ['2001:db8:abcd:12ff::1', 64, '2001:db8:abcd:12ff::/64'],
    ['2001:db8::1', 128, '2001:db8::1/128'],
    ['fe80::1%eth0', 64, 'fe80::/64'],
    ['::1', undefined, '::/56'],
    ['::', undefined, '::/56'],
    ['2001:db8::1', false, '2001:db8::1'],
    ['not an address', undefined, 'not an address'],
    [undefined, undefined, 'unknown'],
    ['', undefined, 'unknown'],
  ] as Array<[string | undefined, number | false | undefined, string]>)('%s (/%s) → %s', (ip, subnet, expected) => {
    expect(ipKey(ip, subnet)).toBe(expected);
  });

  it('gives every address of one /56 the same key and the next /56 another', () => {
    expect(ipKey('2001:db8:0:100::1')).toBe(ipKey('2001:db8:0:1ff:ffff::9'));
    expect(ipKey('2001:db8:0:200::1')).not.toBe(ipKey('2001:db8:0:1ff::1'));
  });

  // A service moving from express-rate-limit keeps its keys, so its counters carry over.
  const samples = [
    '203.0.113.7',
    '::ffff:203.0.113.7',
    '::ffff:102:304',
    '::1.2.3.4',
    '::1',
    '::',
    'fe80::1%eth0',
    '64:ff9b::192.0.2.33',
    '2001:db8:abcd:12ff:1:2:3:4',
    '2001:0DB8:0000:0000:0000:0000:0000:0001',
    'not an address',
  ];
  it.each(samples)('matches express-rate-limit ipKeyGenerator for %s at /48, /56, /64, /128', (ip) => {
    for (const subnet of [48, 56, 64, 128]) expect(ipKey(ip, subnet)).toBe(ipKeyGenerator(ip, subnet));
  });

  it('matches express-rate-limit ipKeyGenerator on random IPv4 and IPv6 addresses', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.ipV4(),
          fc.ipV6(),
          fc.ipV4().map((v4) => `::ffff:${v4}`),
        ),
        fc.integer({ min: 1, max: 128 }),
        (ip, subnet) => {
          expect(ipKey(ip, subnet)).toBe(ipKeyGenerator(ip, subnet));
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
