import { algorithmCode, type LimitRule } from './rules.js';

/**
 * The `{hash tag}` of an identity. Every key of one identity carries it, so one script can touch
 * them all on Cluster. Braces inside the identity would end the tag early (or make it empty, so
 * each key hashed on its own): they are escaped, with `%` first so the encoding stays unique.
 */
export function identityTag(id: string): string {
  const safe = /[{}%]/.test(id) ? id.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D') : id;
  return `{${safe}}`;
}

/**
 * Key suffix of a limit's state: algorithm and window. The limit itself is left out, so raising
 * a limit keeps what has been counted (a quota raised at noon still knows the morning's calls).
 */
export function ruleSuffix(rule: LimitRule): string {
  return `${algorithmCode(rule.algorithm)}${rule.windowMs}`;
}

/** The keys one call touches: the block key first, then one per limit, all under one hash tag. */
export function limiterKeys(base: string, id: string, suffixes: readonly string[]): string[] {
  const root = `${base}${identityTag(id)}:`;
  const keys = [`${root}block`];
  for (const suffix of suffixes) keys.push(root + suffix);
  return keys;
}
