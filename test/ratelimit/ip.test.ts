import { describe, expect, it } from 'vitest';
import { ipKey } from '../../src/index.js';

describe('ipKey', () => {
  it.each([
    ['203.0.113.7', undefined, '203.0.113.7'],
    ['::ffff:203.0.113.7', undefined, '203.0.113.7'],
    ['2001:db8:abcd:12ff:1:2:3:4', undefined, '2001:db8:abcd:1200:0:0:0:0/56'],
    ['2001:db8:abcd:12ff::1', undefined, '2001:db8:abcd:1200:0:0:0:0/56'],
    ['2001:db8:abcd:12ff::1', 64, '2001:db8:abcd:12ff:0:0:0:0/64'],
    ['2001:db8::1', 128, '2001:db8:0:0:0:0:0:1/128'],
    ['fe80::1%eth0', 64, 'fe80:0:0:0:0:0:0:0/64'],
    ['::', undefined, '0:0:0:0:0:0:0:0/56'],
    ['64:ff9b::192.0.2.33', 128, '64:ff9b:0:0:0:0:c000:221/128'],
    [undefined, undefined, 'unknown'],
    ['', undefined, 'unknown'],
  ])('%s (/%s) → %s', (ip, subnet, expected) => {
    expect(ipKey(ip, subnet)).toBe(expected);
  });

  it('gives every address of one /56 the same key and the next /56 another', () => {
    expect(ipKey('2001:db8:0:100::1')).toBe(ipKey('2001:db8:0:1ff:ffff::9'));
    expect(ipKey('2001:db8:0:200::1')).not.toBe(ipKey('2001:db8:0:1ff::1'));
  });
});
