/**
 * metadata.json rebuilt from a download's `x-amz-meta-*`, `x-goog-meta-*` or `x-ms-meta-*` headers:
 * compact JSON, keys lower-cased and sorted, values RFC 2047-decoded, `{}` when there are none
 * (the same shape the archiver writes from --metadata).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { decodeHeaderValue } from '../keys/header-value.ts';

const PREFIXES = ['x-amz-meta-', 'x-goog-meta-', 'x-ms-meta-'];

export function metadataFromHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const prefix = PREFIXES.find((p) => lower.startsWith(p));
    if (prefix === undefined || lower.length === prefix.length) continue;
    found[lower.slice(prefix.length)] = decodeHeaderValue(Array.isArray(value) ? value.join(', ') : value);
  }
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(found).sort()) sorted[k] = found[k];
  return sorted;
}

export function metadataJsonText(metadata: Record<string, string>): string {
  return JSON.stringify(metadata);
}
