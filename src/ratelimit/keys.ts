import { algorithmCode, type LimitRule } from './rules.js';

/**
 * Key suffix of a limit's state: algorithm and window. The limit itself is left out, so raising
 * a limit keeps what has been counted (a quota raised at noon still knows the morning's calls).
 */
export function ruleSuffix(rule: LimitRule): string {
  return `${algorithmCode(rule)}${rule.windowMs}`;
}
