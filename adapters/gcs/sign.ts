/**
 * GCS signed URLs (XML API), V4 and V2, built by hand with node:crypto.
 *
 * V4 (https://cloud.google.com/storage/docs/authentication/signatures):
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n \n SIGNED_HEADERS \n UNSIGNED-PAYLOAD
 *   string to sign    = GOOG4-RSA-SHA256 \n DATETIME \n SCOPE \n hex(sha256(canonical request))
 *   signature         = hex(RSA-SHA256(string to sign))
 * V2 (what GitLab Runner produces):
 *   string to sign    = METHOD \n CONTENT-MD5 \n CONTENT-TYPE \n EXPIRES \n x-goog-* headers RESOURCE
 *   signature         = base64(RSA-SHA256(string to sign))
 *
 * Differences from @google-cloud/storage's getSignedUrl: the `host` header is signed as the client
 * will send it (with the port when the endpoint has a non-default one; the library drops the port),
 * and the signing function is synchronous when the key is local (see docs/gcs.md for the speed).
 */

import { createHash } from 'node:crypto';

export const V4_MAX_EXPIRES = 604_800;
export const DEFAULT_ENDPOINT = 'https://storage.googleapis.com';

/** Signs bytes with RSA-SHA256 as the service account (local key or IAM signBlob). */
export type SignBytes = (data: string) => Buffer | Promise<Buffer>;

export interface SignUrlInput {
  version: 'v2' | 'v4';
  method: 'GET' | 'HEAD' | 'PUT';
  /** Parsed endpoint, e.g. new URL('https://storage.googleapis.com'); its path must be '/'. */
  endpoint: URL;
  bucket: string;
  objectName: string;
  /** Headers the client will send and that get signed (any case); `host` is added for V4. */
  headers: Record<string, string>;
  expiresIn: number;
  /** Epoch milliseconds. */
  now: number;
  email: string;
  sign: SignBytes;
}

/** RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ */
export function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** Path of an object: /<bucket>/<object>, each segment RFC 3986-encoded, slashes kept. */
export function resourcePath(bucket: string, objectName: string): string {
  return `/${rfc3986(bucket)}/${objectName.split('/').map(rfc3986).join('/')}`;
}

/** Lower-cased, sorted `name:value\n` lines, values trimmed with inner whitespace runs collapsed. */
export function canonicalHeaderLines(headers: Record<string, string>): { lines: string; names: string } {
  const entries = Object.entries(headers)
    .map(([k, v]) => [k.toLowerCase(), String(v).trim().replace(/\s+/g, ' ')] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { lines: entries.map(([k, v]) => `${k}:${v}\n`).join(''), names: entries.map(([k]) => k).join(';') };
}

/** 20261122T045507Z */
export function goog4DateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function hostHeader(endpoint: URL): string {
  // URL.host already omits the default port of the scheme.
  return endpoint.host;
}

export function signUrl(input: SignUrlInput): string | Promise<string> {
  return input.version === 'v2' ? signV2(input) : signV4(input);
}

export function signV4(input: SignUrlInput): string | Promise<string> {
  const { endpoint, method } = input;
  if (!(input.expiresIn >= 1 && input.expiresIn <= V4_MAX_EXPIRES)) {
    throw new RangeError(`GCS V4 signed URLs live 1 to ${V4_MAX_EXPIRES} seconds, not ${input.expiresIn}`);
  }
  const path = resourcePath(input.bucket, input.objectName);
  const datetime = goog4DateTime(input.now);
  const scope = `${datetime.slice(0, 8)}/auto/storage/goog4_request`;
  const { lines, names } = canonicalHeaderLines({ ...input.headers, host: hostHeader(endpoint) });
  const query: Array<[string, string]> = [
    ['X-Goog-Algorithm', 'GOOG4-RSA-SHA256'],
    ['X-Goog-Credential', `${input.email}/${scope}`],
    ['X-Goog-Date', datetime],
    ['X-Goog-Expires', String(Math.floor(input.expiresIn))],
    ['X-Goog-SignedHeaders', names],
  ];
  // Already in byte order of the names.
  const canonicalQuery = query.map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
  const canonicalRequest = `${method}\n${path}\n${canonicalQuery}\n${lines}\n${names}\nUNSIGNED-PAYLOAD`;
  const stringToSign = `GOOG4-RSA-SHA256\n${datetime}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  const finish = (sig: Buffer): string =>
    `${endpoint.protocol}//${endpoint.host}${path}?${canonicalQuery}&X-Goog-Signature=${sig.toString('hex')}`;
  const sig = input.sign(stringToSign);
  return sig instanceof Promise ? sig.then(finish) : finish(sig);
}

export function signV2(input: SignUrlInput): string | Promise<string> {
  const { endpoint, method } = input;
  const path = resourcePath(input.bucket, input.objectName);
  const expires = Math.floor(input.now / 1000) + Math.floor(input.expiresIn);
  let contentType = '';
  let contentMd5 = '';
  const ext: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) {
    const name = k.toLowerCase();
    if (name === 'content-type') contentType = v;
    else if (name === 'content-md5') contentMd5 = v;
    else if (name.startsWith('x-goog-')) ext[name] = v;
    else throw new RangeError(`GCS V2 signed URLs cannot sign header ${name}`);
  }
  const stringToSign = `${method}\n${contentMd5}\n${contentType}\n${expires}\n${canonicalHeaderLines(ext).lines}${path}`;
  const finish = (sig: Buffer): string =>
    `${endpoint.protocol}//${endpoint.host}${path}?GoogleAccessId=${rfc3986(input.email)}&Expires=${expires}&Signature=${rfc3986(sig.toString('base64'))}`;
  const sig = input.sign(stringToSign);
  return sig instanceof Promise ? sig.then(finish) : finish(sig);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
