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
  try {
    for (let start = 0; start < raw.length;) {
      let end = raw.indexOf('&', start);
      if (end === -1) end = raw.length;
      if (end > start) {
        const eq = raw.indexOf('=', start);
        out.push(eq === -1 || eq > end ? [decode(raw.slice(start, end)), ''] : [decode(raw.slice(start, eq)), decode(raw.slice(eq + 1, end))]);
      }
      start = end + 1;
    }
  } catch {
    return undefined;
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

/** What a canonical query string is made of: unreserved characters, %XX, '=' and '&'. */
const CANONICAL_CHARS = /^[A-Za-z0-9\-._~%=&]*$/;
/** Every %XX of a canonical string: upper-case hex, never an unreserved byte (which stands for itself). */
const BAD_PERCENT = /%(?![01][0-9A-F]|2[0-9A-CF]|3[A-F]|40|5[B-E]|60|7[B-DF]|[89A-F][0-9A-F])/;

/**
 * The canonical query straight from the raw query string when the client sent it canonical already
 * (encoded the RFC 3986 way and sorted, as the AWS SDKs and minio-go presign): the same string
 * canonicalQuery() builds, without decoding and re-encoding every pair (the largest cost of verifying
 * a presigned URL after the hashes). undefined = not in that form: use canonicalQuery(). Two regular
 * expressions over the whole string, then indexOf and char codes: a per-character loop in JavaScript
 * or slicing out names to compare them cost as much as the re-encoding.
 */
export function canonicalQueryFromRaw(raw: string, skip?: string): string | undefined {
  if (raw === '') return '';
  if (!CANONICAL_CHARS.test(raw) || (raw.includes('%') && BAD_PERCENT.test(raw))) return undefined;
  let prevStart = -1; // the previous part kept: name raw[prevStart, prevEq), value raw[prevEq + 1, prevEnd)
  let prevEq = -1;
  let prevEnd = -1;
  let skipFrom = -1;
  let skipTo = -1;
  for (let start = 0; start <= raw.length;) {
    let end = raw.indexOf('&', start);
    if (end === -1) end = raw.length;
    const eq = raw.indexOf('=', start);
    // An empty part or name, no '=', or a second '=' (canonical values have %3D): canonicalQuery() handles them.
    if (eq <= start || eq >= end) return undefined;
    const eq2 = raw.indexOf('=', eq + 1);
    if (eq2 !== -1 && eq2 < end) return undefined;
    if (skip !== undefined && eq - start === skip.length && raw.startsWith(skip, start)) {
      if (skipFrom !== -1) return undefined; // twice: canonicalQuery() leaves out both
      skipFrom = start;
      skipTo = end;
    } else {
      if (prevStart !== -1) {
        const byName = compareRanges(raw, prevStart, prevEq, start, eq);
        if (byName > 0 || (byName === 0 && compareRanges(raw, prevEq + 1, prevEnd, eq + 1, end) > 0)) return undefined;
      }
      prevStart = start;
      prevEq = eq;
      prevEnd = end;
    }
    start = end + 1;
  }
  if (skipFrom === -1) return raw;
  // The skipped part and one of the '&' beside it.
  return skipFrom === 0 ? raw.slice(Math.min(skipTo + 1, raw.length)) : raw.slice(0, skipFrom - 1) + raw.slice(skipTo);
}

/** raw[a, aEnd) against raw[b, bEnd) by char code (ASCII here: byte order), as <, =, > 0. */
function compareRanges(raw: string, a: number, aEnd: number, b: number, bEnd: number): number {
  for (; a < aEnd && b < bEnd; a++, b++) {
    const d = raw.charCodeAt(a) - raw.charCodeAt(b);
    if (d !== 0) return d;
  }
  return (aEnd - a) - (bEnd - b);
}

const trimmed = (v: string): string => (WHITESPACE_RUN.test(v) ? v.replace(/\s+/g, ' ').trim() : v);

/** `name:value\n` for each signed header; several values of one header joined by ','. undefined = a signed header is missing. */
export function canonicalHeaders(signed: string[], header: (name: string) => string[] | undefined): string | undefined {
  let out = '';
  for (const name of signed) {
    const values = header(name);
    if (values === undefined) return undefined;
    out += `${name}:${values.length === 1 ? trimmed(values[0]) : values.map(trimmed).join(',')}\n`;
  }
  return out;
}
