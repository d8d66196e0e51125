/**
 * Makes any text (a throttler name, a route's URL) safe inside a redscale key prefix: braces
 * would start a Cluster hash tag, so `{`, `}` and `%` are percent-encoded. The mapping is
 * one-to-one, so two different names never share keys.
 */
export function keySegment(text: string): string {
  return text.replace(/[%{}]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}
