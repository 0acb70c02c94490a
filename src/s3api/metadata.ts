/**
 * x-amz-meta-* values through the front door, the way S3 treats them: a value is Unicode, received
 * as the header's bytes (UTF-8 as clients send it raw, or an RFC 2047 encoded word, which S3 decodes
 * before storing), and kept in its RFC 2047 form (=?UTF-8?B?…?=) when it is not plain printable
 * ASCII, which is also how S3 returns such a value on GET/HEAD. Every backend thus gets ASCII only
 * (Azure refuses anything else; S3 and GCS would mangle or refuse raw bytes), and a client reads
 * back what S3 would have shown it.
 */
import type { IncomingMessage } from 'node:http';
import { decodeHeaderValue, encodeHeaderValue, fromHeaderBytes } from '../keys/header-value.ts';
import { META_HEADER_PREFIX } from '../service/objects.ts';

/** The signed x-amz-meta-* headers (an unsigned one could be added by anyone on the way), names without the prefix. */
export function signedMetadata(req: IncomingMessage, signedHeaders: Iterable<string>): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const name of signedHeaders) {
    const v = req.headers[name];
    if (name.startsWith(META_HEADER_PREFIX) && typeof v === 'string') metadata[name.slice(META_HEADER_PREFIX.length)] = encodeHeaderValue(decodeWord(fromHeaderBytes(v)));
  }
  return metadata;
}

const B_WORD = /^=\?UTF-8\?B\?[A-Za-z0-9+/]*={0,2}\?=$/i;

/** An RFC 2047 UTF-8 word decoded; anything that only looks like one (bad base64, not UTF-8) stays as sent. */
function decodeWord(v: string): string {
  if (!/^=\?UTF-8\?[BQ]\?/i.test(v)) return v;
  if (/^=\?UTF-8\?B/i.test(v) && !B_WORD.test(v)) return v;
  const d = decodeHeaderValue(v);
  return d.includes('\uFFFD') ? v : d;
}
