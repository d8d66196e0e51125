/**
 * A name generator that cycles through `size` names (`label:0` … `label:size-1`), so a scenario
 * spreads its calls over many keys without growing the keyspace without bound.
 */
export function cyclingNames(label: string, size: number): () => string {
  let next = 0;
  return () => `${label}:${next++ % size}`;
}
