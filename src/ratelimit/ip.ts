import { isIPv4, isIPv6 } from 'node:net';

/**
 * A rate-limit key for a client IP. IPv4 addresses are used as they are; an IPv6 address is
 * reduced to its `/ipv6Subnet` network (default /56), because one user is usually given a whole
 * /64 or more and could otherwise rotate through billions of addresses. IPv4-mapped IPv6
 * addresses (`::ffff:1.2.3.4`) count as IPv4. A missing address becomes `'unknown'`, so such
 * requests share one budget instead of escaping the limit.
 */
export function ipKey(ip: string | undefined, ipv6Subnet = 56): string {
  if (!ip) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1] as string;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const groups = expandIPv6(ip);
  const bits = Math.max(0, Math.min(128, Math.trunc(ipv6Subnet)));
  const masked = groups.map((group, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 16 ? group : keep === 0 ? 0 : group & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${masked.map((group) => group.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit groups of an IPv6 address (zone index dropped, `::` and dotted tails expanded). */
function expandIPv6(ip: string): number[] {
  let address = ip.split('%')[0] as string;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    address = `${address.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = Array(8 - left.length - right.length).fill('0');
  return [...left, ...(tail === undefined ? [] : zeros), ...right].map((group) => Number.parseInt(group || '0', 16));
}
