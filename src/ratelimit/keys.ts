import { hashTag } from '../common/keys.js';
import { algorithmCode, type LimitRule } from './rules.js';

/**
 * Key suffix of a limit's state: algorithm and window. The limit itself is left out, so raising
 * a limit keeps what has been counted (a quota raised at noon still knows the morning's calls).
 */
export function ruleSuffix(rule: LimitRule): string {
  return `${algorithmCode(rule)}${rule.windowMs}`;
}

/** The keys one call touches: the block key first, then one per limit, all under one hash tag. */
export function limiterKeys(base: string, id: string, suffixes: readonly string[]): string[] {
  const root = `${base}${hashTag(id)}:`;
  const keys = [`${root}block`];
  for (const suffix of suffixes) keys.push(root + suffix);
  return keys;
}
