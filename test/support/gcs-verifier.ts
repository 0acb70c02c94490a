/**
 * An independent verifier for GCS signed URLs, written from Google's documentation, NOT from
 * adapters/gcs (nothing is imported from there, nor from @google-cloud/storage):
 *
 * V4 — https://cloud.google.com/storage/docs/authentication/canonical-requests and
 *      https://cloud.google.com/storage/docs/authentication/signatures
 *   CanonicalRequest = HTTP_VERB \n PATH_TO_RESOURCE \n CANONICAL_QUERY_STRING \n CANONICAL_HEADERS \n
 *                      \n SIGNED_HEADERS \n PAYLOAD            (PAYLOAD = UNSIGNED-PAYLOAD)
 *   StringToSign     = GOOG4-RSA-SHA256 \n CURRENT_DATETIME \n CREDENTIAL_SCOPE \n HEX(SHA256(CanonicalRequest))
 *   X-Goog-Signature = HEX(RSA-SHA256(StringToSign))
 * V2 — https://cloud.google.com/storage/docs/access-control/signed-urls-v2
 *   StringToSign = HTTP_Verb \n Content_MD5 \n Content_Type \n Expires \n Canonicalized_Extension_Headers Canonicalized_Resource
 *   Signature    = BASE64(RSA-SHA256(StringToSign))
 *
 * Everything is rebuilt from the request as a server receives it (method, raw path and query, headers
 * including Host), never from what the signer intended.
 */
import { createHash, verify, type KeyObject } from 'node:crypto';

export type HeaderBag = Record<string, string | string[] | undefined>;

export interface ReceivedRequest {
  method: string;
  /** Path and query exactly as received (req.url), e.g. /bucket/a%20b?X-Goog-Algorithm=... */
  rawUrl: string;
  /** Lower-case header names, as node:http gives them (must include host). */
  headers: HeaderBag;
}

export type Verdict =
  | { ok: true; version: 'v2' | 'v4'; email: string; signedHeaders: string[]; expiresAt: number }
  | { ok: false; code: 'SignatureDoesNotMatch' | 'ExpiredToken' | 'MalformedSecurityHeader' | 'AccessDenied' | 'RequestNotYetValid'; reason: string };

const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

function parseQuery(raw: string): Array<[string, string]> {
  if (!raw) return [];
  return raw.split('&').filter(Boolean).map((pair) => {
    const i = pair.indexOf('=');
    const k = i < 0 ? pair : pair.slice(0, i);
    const v = i < 0 ? '' : pair.slice(i + 1);
    return [decodeURIComponent(k), decodeURIComponent(v)];
  });
}

/** Decode each segment as received and re-encode it the documented way (RFC 3986, slashes kept). */
function canonicalPath(rawPath: string): string {
  return rawPath.split('/').map((seg) => enc(decodeURIComponent(seg))).join('/');
}

function headerValue(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v.join(',') : v).trim().replace(/\s+/g, ' ');
}

function fail(code: Extract<Verdict, { ok: false }>['code'], reason: string): Verdict {
  return { ok: false, code, reason };
}

/** Extension headers (x-goog-*) that a signed URL request must carry signed. */
const MUST_BE_SIGNED = /^x-goog-(meta-.*|content-length-range|encryption-.*|acl|storage-class)$/;

export function verifySignedRequest(req: ReceivedRequest, keys: Map<string, KeyObject>, nowMs = Date.now()): Verdict {
  const q = req.rawUrl.indexOf('?');
  const rawPath = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
  const params = parseQuery(q < 0 ? '' : req.rawUrl.slice(q + 1));
  const get = (name: string): string | undefined => {
    const found = params.filter(([k]) => k === name);
    return found.length === 1 ? found[0][1] : undefined;
  };
  if (get('X-Goog-Signature') !== undefined || get('X-Goog-Algorithm') !== undefined) return verifyV4(req, rawPath, params, get, keys, nowMs);
  if (get('Signature') !== undefined) return verifyV2(req, rawPath, get, keys, nowMs);
  return fail('AccessDenied', 'no signature in the query');
}

function verifyV4(
  req: ReceivedRequest,
  rawPath: string,
  params: Array<[string, string]>,
  get: (n: string) => string | undefined,
  keys: Map<string, KeyObject>,
  nowMs: number,
): Verdict {
  const algorithm = get('X-Goog-Algorithm');
  const credential = get('X-Goog-Credential');
  const date = get('X-Goog-Date');
  const expires = get('X-Goog-Expires');
  const signedHeaders = get('X-Goog-SignedHeaders');
  const signature = get('X-Goog-Signature');
  if (algorithm !== 'GOOG4-RSA-SHA256') return fail('MalformedSecurityHeader', `bad X-Goog-Algorithm ${algorithm}`);
  if (!credential || !date || !expires || !signedHeaders || !signature) return fail('MalformedSecurityHeader', 'missing X-Goog-* parameter');
  const m = /^(.+)\/(\d{8})\/([^/]+)\/storage\/goog4_request$/.exec(credential);
  if (!m) return fail('MalformedSecurityHeader', `bad X-Goog-Credential ${credential}`);
  const [, email, day] = m;
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!dm) return fail('MalformedSecurityHeader', `bad X-Goog-Date ${date}`);
  if (date.slice(0, 8) !== day) return fail('MalformedSecurityHeader', 'credential scope date differs from X-Goog-Date');
  if (!/^\d+$/.test(expires) || Number(expires) < 1 || Number(expires) > 604800) return fail('MalformedSecurityHeader', `bad X-Goog-Expires ${expires}`);
  if (!/^[0-9a-f]+$/.test(signature)) return fail('SignatureDoesNotMatch', 'signature is not lower-case hex');
  const start = Date.UTC(+dm[1], +dm[2] - 1, +dm[3], +dm[4], +dm[5], +dm[6]);
  const expiresAt = start + Number(expires) * 1000;
  if (nowMs < start - 60_000) return fail('RequestNotYetValid', 'X-Goog-Date is in the future');
  if (nowMs >= expiresAt) return fail('ExpiredToken', 'Request has expired');

  const names = signedHeaders.split(';');
  if (!names.includes('host')) return fail('MalformedSecurityHeader', 'host is not a signed header');
  if ([...names].sort().join(';') !== signedHeaders || names.some((n) => n !== n.toLowerCase())) {
    return fail('MalformedSecurityHeader', 'X-Goog-SignedHeaders not lower-case and sorted');
  }
  let canonicalHeaders = '';
  for (const name of names) {
    const value = headerValue(req.headers, name);
    if (value === undefined) return fail('SignatureDoesNotMatch', `signed header ${name} not sent`);
    canonicalHeaders += `${name}:${value}\n`;
  }
  for (const name of Object.keys(req.headers)) {
    if (MUST_BE_SIGNED.test(name) && !names.includes(name)) return fail('AccessDenied', `header ${name} sent but not signed`);
  }
  const canonicalQuery = params
    .filter(([k]) => k !== 'X-Goog-Signature')
    .map(([k, v]) => [enc(k), enc(v)] as const)
    .sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [req.method, canonicalPath(rawPath), canonicalQuery, canonicalHeaders, signedHeaders, 'UNSIGNED-PAYLOAD'].join('\n');
  const scope = credential.slice(email.length + 1);
  const stringToSign = ['GOOG4-RSA-SHA256', date, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const key = keys.get(email);
  if (!key) return fail('AccessDenied', `unknown service account ${email}`);
  if (!verify('sha256', Buffer.from(stringToSign), key, Buffer.from(signature, 'hex'))) {
    return fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided');
  }
  return { ok: true, version: 'v4', email, signedHeaders: names, expiresAt };
}

function verifyV2(req: ReceivedRequest, rawPath: string, get: (n: string) => string | undefined, keys: Map<string, KeyObject>, nowMs: number): Verdict {
  const email = get('GoogleAccessId');
  const expires = get('Expires');
  const signature = get('Signature');
  if (!email || !expires || !signature) return fail('MalformedSecurityHeader', 'missing GoogleAccessId, Expires or Signature');
  if (!/^\d+$/.test(expires)) return fail('MalformedSecurityHeader', `bad Expires ${expires}`);
  const expiresAt = Number(expires) * 1000;
  if (nowMs >= expiresAt) return fail('ExpiredToken', 'Request has expired');
  const ext = Object.keys(req.headers)
    .filter((n) => n.startsWith('x-goog-'))
    .sort()
    .map((n) => `${n}:${headerValue(req.headers, n)}\n`)
    .join('');
  const stringToSign = [req.method, headerValue(req.headers, 'content-md5') ?? '', headerValue(req.headers, 'content-type') ?? '', expires, ext + canonicalPath(rawPath)].join('\n');
  const key = keys.get(email);
  if (!key) return fail('AccessDenied', `unknown service account ${email}`);
  if (!verify('sha256', Buffer.from(stringToSign), key, Buffer.from(signature, 'base64'))) {
    return fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided');
  }
  const signedHeaders = Object.keys(req.headers).filter((n) => n.startsWith('x-goog-') || n === 'content-type' || n === 'content-md5');
  return { ok: true, version: 'v2', email, signedHeaders, expiresAt };
}

/** Verify a URL + headers as a client would send them (builds the request a server would receive). */
export function verifyUrl(method: string, url: string, headers: Record<string, string>, keys: Map<string, KeyObject>, nowMs = Date.now()): Verdict {
  const u = new URL(url);
  const bag: HeaderBag = { host: u.host };
  for (const [k, v] of Object.entries(headers)) bag[k.toLowerCase()] = v;
  return verifySignedRequest({ method, rawUrl: u.pathname + u.search, headers: bag }, keys, nowMs);
}
