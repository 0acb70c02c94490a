/**
 * URLs the service signs for itself (SPEC §3 local): HMAC-SHA256 over the method, the object name,
 * the expiry, the size cap and the signed headers with their values. Anything changed → 403.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CacheGateError } from '../../src/errors.ts';

export const Q_EXPIRES = 'X-Cachegate-Expires';
export const Q_MAX = 'X-Cachegate-MaxSize';
export const Q_HEADERS = 'X-Cachegate-SignedHeaders';
export const Q_SIGNATURE = 'X-Cachegate-Signature';

export interface SignInput {
  method: string;
  objectName: string;
  /** Unix seconds. */
  expires: number;
  maxSize: number;
  /** Lower-case header name → value; all of them are signed. */
  headers: Record<string, string>;
}

function canonical(input: SignInput, names: string[], value: (n: string) => string): string {
  let s = `CACHEGATE-HMAC-SHA256\n${input.method}\n${input.objectName}\n${input.expires}\n${input.maxSize}\n${names.join(';')}\n`;
  for (const n of names) s += `${n}:${value(n)}\n`;
  return s;
}

/**
 * The signed query string. `key` is a KeyObject (createSecretKey): createHmac with a raw Buffer costs
 * ~6x more per call. Written by hand: every value is digits, hex or `[a-z0-9-]` names joined by ';'
 * (sent as %3B), and URLSearchParams cost a fifth of a presign.
 */
export function sign(key: KeyObject, input: SignInput): string {
  const { headers } = input;
  const names = Object.keys(headers).sort();
  for (const n of names) if (!HEADER_NAME.test(n)) throw new Error(`signed header names must match ${HEADER_NAME}: ${n}`);
  const sig = createHmac('sha256', key).update(canonical(input, names, (n) => headers[n])).digest('hex');
  let q = `${Q_EXPIRES}=${input.expires}`;
  if (input.maxSize > 0) q += `&${Q_MAX}=${input.maxSize}`;
  if (names.length > 0) q += `&${Q_HEADERS}=${names.join('%3B')}`;
  return `${q}&${Q_SIGNATURE}=${sig}`;
}

/** Signed header names: lower case, and nothing to escape in a query string. */
const HEADER_NAME = /^[a-z0-9-]+$/;

const denied = (why: string): CacheGateError => new CacheGateError('forbidden', 403, `request signature is not valid: ${why}`);
/** A query that is not exactly the form sign() writes: refused before any HMAC is computed. */
const malformed = (why: string): CacheGateError => new CacheGateError('malformed_signature', 403, `request signature is not in its canonical form: ${why}`);

const PARAMS = new Set([Q_EXPIRES, Q_MAX, Q_HEADERS, Q_SIGNATURE]);
/** What sign() writes: lower-case hex of an HMAC-SHA256; unix seconds and byte counts without leading zeros. */
const SIGNATURE = /^[0-9a-f]{64}$/;
const EXPIRES = /^[1-9][0-9]{0,11}$/;
const MAX_SIZE = /^[1-9][0-9]{0,15}$/;

/**
 * The signature parameters of a query, accepted in exactly one form (the one sign() writes): each at
 * most once, nothing else in the query, values of the exact shape, signed header names sorted and
 * unique. A verifier that takes the first of two values, or ignores junk after a signature, accepts
 * URLs its signer never wrote.
 */
export function parseSignedQuery(query: URLSearchParams): { expires: number; maxSize: number; names: string[]; signature: string } {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (!PARAMS.has(name)) throw malformed('unexpected query parameter');
    if (seen.has(name)) throw malformed(`${name} is given more than once`);
    seen.add(name);
  }
  const signature = query.get(Q_SIGNATURE);
  const expires = query.get(Q_EXPIRES);
  if (signature === null || expires === null) throw malformed(`${Q_SIGNATURE} and ${Q_EXPIRES} are required`);
  if (!SIGNATURE.test(signature)) throw malformed(`${Q_SIGNATURE} must be 64 lower-case hex digits`);
  if (!EXPIRES.test(expires)) throw malformed(`${Q_EXPIRES} must be unix seconds`);
  const max = query.get(Q_MAX);
  if (max !== null && !MAX_SIZE.test(max)) throw malformed(`${Q_MAX} must be a positive number of bytes`);
  const namesRaw = query.get(Q_HEADERS);
  const names = namesRaw === null ? [] : namesRaw.split(';');
  for (let i = 0; i < names.length; i++) {
    if (!HEADER_NAME.test(names[i])) throw malformed(`${Q_HEADERS} holds a name that is not a lower-case header name`);
    if (i > 0 && names[i] <= names[i - 1]) throw malformed(`${Q_HEADERS} must be sorted, without repeats`);
  }
  return { expires: Number(expires), maxSize: max === null ? 0 : Number(max), names, signature };
}

/** Verifies a signed request; returns the size cap it was signed with. */
export function verify(
  key: KeyObject,
  req: { method: string; objectName: string; query: URLSearchParams; header: (n: string) => string | undefined },
  now: number,
): { maxSize: number; signedHeaders: string[] } {
  const q = parseSignedQuery(req.query);
  const input: SignInput = { method: req.method, objectName: req.objectName, expires: q.expires, maxSize: q.maxSize, headers: {} };
  const expected = createHmac('sha256', key).update(canonical(input, q.names, (n) => req.header(n) ?? '')).digest();
  if (!timingSafeEqual(Buffer.from(q.signature, 'hex'), expected)) throw denied('signature does not match');
  if (input.expires * 1000 < now) throw denied('URL expired');
  return { maxSize: input.maxSize, signedHeaders: q.names };
}

/** Object name → URL path, each segment percent-encoded. */
export function encodePath(objectName: string): string {
  return UNRESERVED_PATH.test(objectName) ? objectName : objectName.split('/').map(encodeURIComponent).join('/');
}

/** Names made only of characters encodeURIComponent leaves alone (and '/'), the usual case. */
const UNRESERVED_PATH = /^[A-Za-z0-9\-_.!~*'()/]*$/;

/** URL path (after the prefix) → object name; undefined when malformed. */
export function decodePath(path: string): string | undefined {
  try {
    const segments = path.split('/').map(decodeURIComponent);
    if (segments.some((s) => s === '' || s === '.' || s === '..' || s.includes('\0'))) return undefined;
    return segments.join('/');
  } catch {
    return undefined;
  }
}
