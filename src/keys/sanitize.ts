/**
 * Cache key sanitizing, as GitLab Runner does it with FF_HASH_CACHE_KEYS off (SPEC §2.1).
 * Vectors: shared/vectors/sanitize.json.
 */
import { posix } from 'node:path';
import { goQuote } from './go-quote.ts';

export type SanitizeResult = { ok: true; key: string; changed: boolean } | { ok: false; message: string };

// One left-to-right pass: %2f/%2F → '/', %2e/%2E → '.', '\' → '/'.
const escapes = /%2[fFeE]|\\/g;
const replaceEscape = (m: string): string => (m === '\\' || m[2] === 'f' || m[2] === 'F' ? '/' : '.');

// Go's unicode.IsSpace.
const trailingSpace = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/u;

export function sanitizeKey(raw: string): SanitizeResult {
  const replaced = raw.replace(escapes, replaceEscape);
  const cleaned = posix.normalize('/' + replaced); // rooted: '..' cannot climb above '/'
  const segments = cleaned.split('/').filter((s) => s !== '');
  // Trim trailing whitespace from the trailing segments only, dropping the ones that become empty.
  while (segments.length > 0) {
    const last = segments[segments.length - 1];
    const trimmed = last.replace(trailingSpace, '');
    if (trimmed === '') {
      segments.pop();
      continue;
    }
    segments[segments.length - 1] = trimmed;
    break;
  }
  const key = segments.join('/');
  if (key === '' && raw !== '') {
    return { ok: false, message: `cache key ${goQuote(raw)} could not be sanitized` };
  }
  return { ok: true, key, changed: key !== raw };
}
