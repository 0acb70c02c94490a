/**
 * SigV4 canonical request parts, from a request as it arrived (AWS's "Create a canonical request").
 * S3 does not normalize paths: the canonical URI is the decoded path, each byte re-encoded the
 * RFC 3986 way, so a client that encoded more or less than needed still meets the same string.
 */
import { uriEncode, WHITESPACE_RUN } from '../sign/sigv4.ts';

export type QueryPairs = Array<[string, string]>;

/** A query string taken apart once: its pairs for the router, and its canonical form for the signature when it arrived in that form already. */
export interface ReadQuery {
  /** Percent-decoded ('+' is a literal plus in S3 requests, as AWS treats it). */
  pairs: QueryPairs;
  /** The raw string, when it is a canonical query as it stands (header-signed requests sign all of it); undefined = build it with canonicalQuery(). */
  canonical: string | undefined;
  /** The same without its X-Amz-Signature part (what a presigned URL signs). */
  canonicalUnsigned: string | undefined;
}

const SIGNATURE_PARAM = 'X-Amz-Signature';

/**
 * Pairs and canonical form in one pass over the raw query (parsing, then finding every '&' and '='
 * again to check the canonical form, was a quarter of verifying a presigned URL; a loop testing each
 * character in JavaScript measured slower than the two regular expressions here). The canonical form
 * is the raw string when the client sent it encoded the RFC 3986 way and sorted, as the AWS SDKs and
 * minio-go presign (minio-go appends X-Amz-Signature last: out of order, but it is left out of what a
 * presigned URL signs). undefined = not valid percent-encoding.
 */
export function readQuery(raw: string): ReadQuery | undefined {
  const pairs: QueryPairs = [];
  let canonical = CANONICAL_CHARS.test(raw); // and every escape canonical: checked as each is decoded
  let sorted = true;
  let sortedUnsigned = true;
  // The previous part and the previous one that is not X-Amz-Signature: raw[start, eq) is a name,
  // raw[eq + 1, end) its value. Compared in place: slicing them out cost as much as the rest.
  let prevStart = -1;
  let prevEq = -1;
  let prevEnd = -1;
  let keptStart = -1;
  let keptEq = -1;
  let keptEnd = -1;
  let sigFrom = -1;
  let sigTo = -1;
  const n = raw.length;
  // The next '=' and '%' at or after where the scan is (-1: none left), each found once: an
  // indexOf per part and a test per name and value for each measured ~1 µs on a presigned URL.
  let nextEq = raw.indexOf('=');
  let pct = raw.indexOf('%');
  if (pct === -1) pct = n;
  try {
    for (let start = 0; start < n;) {
      let end = raw.indexOf('&', start);
      if (end === -1) end = n;
      let eq = nextEq;
      if (eq !== -1 && eq < start) eq = raw.indexOf('=', start); // the previous part had a second '='
      if (eq !== -1 && eq < end) nextEq = raw.indexOf('=', eq + 1);
      else eq = -1;
      if (end === start || end === n - 1) canonical = false; // an empty part (here or after a trailing '&'): canonicalQuery() drops it
      if (end > start) {
        const nameEnd = eq === -1 ? end : eq;
        const rawName = raw.slice(start, nameEnd);
        let name = rawName;
        if (pct < nameEnd) {
          name = decoded(rawName);
          if (!escapesCanonical) canonical = false;
          pct = raw.indexOf('%', nameEnd);
          if (pct === -1) pct = n;
        }
        let value = '';
        if (eq !== -1) {
          value = raw.slice(eq + 1, end);
          if (pct < end) {
            value = decoded(value);
            if (!escapesCanonical) canonical = false;
            pct = raw.indexOf('%', end);
            if (pct === -1) pct = n;
          }
        }
        pairs.push([name, value]);
        if (canonical) {
          // An empty name, no '=', or a second '=' (canonical values have %3D): canonicalQuery() handles them.
          if (eq <= start || (nextEq !== -1 && nextEq < end)) canonical = false;
          const later = prevStart !== -1 && after(raw, prevStart, prevEq, prevEnd, start, eq, end);
          if (later) sorted = false;
          if (rawName === SIGNATURE_PARAM) { // (startsWith on a slice of the URL is V8's slow path)
            if (sigFrom !== -1) sortedUnsigned = false; // twice: canonicalQuery() leaves out both
            sigFrom = start;
            sigTo = end;
          } else {
            // The kept part is most often the previous one: its comparison is the one just made.
            if (keptStart !== -1 && (keptStart === prevStart ? later : after(raw, keptStart, keptEq, keptEnd, start, eq, end))) sortedUnsigned = false;
            keptStart = start;
            keptEq = eq;
            keptEnd = end;
          }
          prevStart = start;
          prevEq = eq;
          prevEnd = end;
        }
      }
      start = end + 1;
    }
  } catch {
    return undefined;
  }
  let canonicalUnsigned: string | undefined;
  if (canonical && sortedUnsigned) {
    // The skipped part and one of the '&' beside it.
    canonicalUnsigned = sigFrom === -1 ? raw : sigFrom === 0 ? raw.slice(Math.min(sigTo + 1, n)) : raw.slice(0, sigFrom - 1) + raw.slice(sigTo);
  }
  return { pairs, canonical: canonical && sorted ? raw : undefined, canonicalUnsigned };
}

/**
 * decodeURIComponent, remembering the last few short results: a client's presigned URLs repeat the
 * same encoded X-Amz-Credential and X-Amz-SignedHeaders, and comparing a string is ~4× cheaper than
 * decoding it again (0.6 µs of a presigned verification, measured). Throws as decodeURIComponent.
 * Sets escapesCanonical for the component (remembered with it: a regular expression over the whole
 * query for the same check cost 0.4 µs).
 */
const MEMO_SIZE = 4;
const MEMO_MAX_LENGTH = 256;
const memoIn: string[] = new Array<string>(MEMO_SIZE).fill('');
const memoOut: string[] = new Array<string>(MEMO_SIZE).fill('');
const memoCanonical: boolean[] = new Array<boolean>(MEMO_SIZE).fill(false);
let memoNext = 0;
/** Whether every escape of the component decoded() last took is canonical (see canonicalEscapes). */
let escapesCanonical = false;

function decoded(s: string): string {
  for (let i = 0; i < MEMO_SIZE; i++) {
    if (memoIn[i] === s) {
      escapesCanonical = memoCanonical[i];
      return memoOut[i];
    }
  }
  const d = decodeURIComponent(s);
  escapesCanonical = canonicalEscapes(s);
  if (s.length <= MEMO_MAX_LENGTH) {
    memoIn[memoNext] = s;
    memoOut[memoNext] = d;
    memoCanonical[memoNext] = escapesCanonical;
    memoNext = (memoNext + 1) % MEMO_SIZE;
  }
  return d;
}

/**
 * Every %XX of a string decodeURIComponent took (so each is '%' and two hex digits) is canonical:
 * upper-case hex, never an unreserved byte (which stands for itself).
 */
function canonicalEscapes(s: string): boolean {
  for (let k = s.indexOf('%'); k !== -1; k = s.indexOf('%', k + 3)) {
    const b = upperHex(s.charCodeAt(k + 1)) * 16 + upperHex(s.charCodeAt(k + 2));
    if (b < 0 || unreserved(b)) return false;
  }
  return true;
}

/** 0–15 for 0-9 and A-F; -256 otherwise (lower-case hex is not canonical). */
const upperHex = (c: number): number => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -256);

/** RFC 3986 unreserved: A-Z a-z 0-9 - . _ ~ */
const unreserved = (b: number): boolean =>
  (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;

/** What a canonical query string is made of: unreserved characters, %XX, '=' and '&'. */
const CANONICAL_CHARS = /^[A-Za-z0-9\-._~%=&]*$/;

/** Query pairs, percent-decoded. undefined = malformed. */
export function parseQuery(raw: string): QueryPairs | undefined {
  return readQuery(raw)?.pairs;
}

/** Whether the part at a sorts after the one at b the way canonicalQuery() sorts: by name, then value. */
function after(raw: string, a: number, aEq: number, aEnd: number, b: number, bEq: number, bEnd: number): boolean {
  const byName = compareRanges(raw, a, aEq, b, bEq);
  return byName > 0 || (byName === 0 && compareRanges(raw, aEq + 1, aEnd, bEq + 1, bEnd) > 0);
}

/** raw[a, aEnd) against raw[b, bEnd) by char code (ASCII here: byte order), as <, =, > 0. */
function compareRanges(raw: string, a: number, aEnd: number, b: number, bEnd: number): number {
  for (; a < aEnd && b < bEnd; a++, b++) {
    const d = raw.charCodeAt(a) - raw.charCodeAt(b);
    if (d !== 0) return d;
  }
  return (aEnd - a) - (bEnd - b);
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

const EIGHT_BIT = /[\x80-\xff]/;

/**
 * A header value as the bytes that arrived. Node hands header bytes over one per character
 * (latin1), and the canonical request is hashed as UTF-8: S3 hashes the bytes it received, which is
 * what clients that send UTF-8 as is sign (curl, the JS SDK, Go's net/http: minio-go, the Go SDK).
 * So bytes that form valid UTF-8 are hashed as those bytes. Bytes that do not (0xE9 alone) are
 * hashed as their characters' UTF-8, as before (a client that sends a Latin-1 byte and signs its
 * character's UTF-8; boto3 refuses non-ASCII metadata). One reading per value, never both.
 */
function asReceived(v: string): string {
  if (!EIGHT_BIT.test(v)) return v;
  const bytes = Buffer.from(v, 'latin1');
  const utf8 = bytes.toString('utf8');
  return Buffer.from(utf8, 'utf8').equals(bytes) ? utf8 : v;
}

const trimmed = (raw: string): string => {
  const v = asReceived(raw);
  return WHITESPACE_RUN.test(v) ? v.replace(/\s+/g, ' ').trim() : v;
};

/** `name:value\n` for each signed header; several values of one header joined by ','. undefined = a signed header is missing. */
export function canonicalHeaders(signed: readonly string[], header: (name: string) => string[] | undefined): string | undefined {
  let out = '';
  for (const name of signed) {
    const values = header(name);
    if (values === undefined) return undefined;
    out += `${name}:${values.length === 1 ? trimmed(values[0]) : values.map(trimmed).join(',')}\n`;
  }
  return out;
}
