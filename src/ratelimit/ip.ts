import { isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * A rate-limit key for a client IP, the same key express-rate-limit's `ipKeyGenerator` makes (so
 * a service migrating from it keeps its counters). IPv4 addresses are used as they are; an IPv6
 * address is reduced to its `/ipv6Subnet` network (default /56, e.g. `2001:db8:abcd:1200::/56`),
 * because one user is usually given a whole /64 or more and could otherwise rotate through
 * billions of addresses. IPv4-mapped addresses (`::ffff:1.2.3.4`, also written `::ffff:102:304`)
 * and the IPv4-compatible notation (`::1.2.3.4`) count as the IPv4 address they carry. A missing
 * address becomes `'unknown'`, so such requests share one budget instead of escaping the limit;
 * anything that is not an IP address is returned unchanged. `ipv6Subnet` `0` or `false` keeps
 * IPv6 addresses whole.
 */
export function ipKey(ip: string | undefined, ipv6Subnet: number | false = 56): string {
  if (!ip) return 'unknown';
  if (!isIPv6(ip)) return ip;
  const address = ipaddr.IPv6.parse(ip);
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  const parts = address.parts;
  // `::1.2.3.4`, the deprecated IPv4-compatible notation. `::1` and `::` share its range, so the
  // notation (a dotted tail) is what tells an embedded IPv4 address apart.
  if (ip.includes('.') && parts.slice(0, 6).every((part) => part === 0)) {
    const [high = 0, low = 0] = parts.slice(6);
    return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  }
  if (!ipv6Subnet) return ip;
  const bits = Math.max(0, Math.min(128, Math.trunc(ipv6Subnet)));
  const masked = parts.map((part, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 16 ? part : keep === 0 ? 0 : part & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${new ipaddr.IPv6(masked).toRFC5952String()}/${bits}`;
}
