/**
 * The `{hash tag}` of an identity or resource. Every key of one identity carries it, so one
 * script can touch them all on Cluster. Braces inside the name would end the tag early (or make
 * it empty, so each key hashed on its own): they are escaped, with `%` first so the encoding
 * stays unique.
 */
export function hashTag(name: string): string {
  const safe = /[{}%]/.test(name) ? name.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D') : name;
  return `{${safe}}`;
}
