/**
 * SigV4 canonical request parts, from a request as it arrived (AWS's "Create a canonical request").
 * S3 does not normalize paths: the canonical URI is the decoded path, each byte re-encoded the
 * RFC 3986 way, so a client that encoded more or less than needed still meets the same string.
 */
import { uriEncode, WHITESPACE_RUN } from '../sign/sigv4.ts';

export type QueryPairs = Array<[string, string]>;

const decode = (s: string): string => (s.includes('%') ? decodeURIComponent(s) : s);

/** Query pairs, percent-decoded ('+' is a literal plus in S3 requests, as AWS treats it). undefined = malformed. */
export function parseQuery(raw: string): QueryPairs | undefined {
  const out: QueryPairs = [];
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    try {
      out.push(eq === -1 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
    } catch {
      return undefined;
    }
  }
  return out;
}

/** RFC 3986 unreserved characters (and '/' for paths): nothing to encode, the common case (measured: uriEncode was the largest cost of a verification). */
const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
const UNRESERVED_PATH = /^[A-Za-z0-9\-._~/]*$/;
const encode = (s: string): string => (UNRESERVED.test(s) ? s : uriEncode(s));

export function canonicalUri(decodedPath: string): string {
  return UNRESERVED_PATH.test(decodedPath) ? decodedPath : decodedPath.split('/').map(uriEncode).join('/');
}

/** Sorted by encoded name, then encoded value; `skip` (X-Amz-Signature of a presigned URL) left out. */
export function canonicalQuery(pairs: QueryPairs, skip?: string): string {
  const enc: Array<[string, string]> = [];
  for (const [k, v] of pairs) if (k !== skip) enc.push([encode(k), encode(v)]);
  enc.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return enc.map(([k, v]) => `${k}=${v}`).join('&');
}

/** `name:value\n` for each signed header; several values of one header joined by ','. undefined = a signed header is missing. */
export function canonicalHeaders(signed: string[], header: (name: string) => string[] | undefined): string | undefined {
  let out = '';
  for (const name of signed) {
    const values = header(name);
    if (values === undefined) return undefined;
    out += `${name}:${values.map((v) => (WHITESPACE_RUN.test(v) ? v.replace(/\s+/g, ' ').trim() : v)).join(',')}\n`;
  }
  return out;
}
