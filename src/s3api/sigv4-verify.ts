/**
 * Verifies an AWS Signature Version 4 on an incoming S3 request, in both forms: the Authorization
 * header (SDKs, CLIs) and the presigned query string (what runners hand their helper). Time rules
 * as AWS applies them: a header-signed request more than 15 minutes off the server's clock is
 * RequestTimeTooSkewed; a presigned URL is valid from X-Amz-Date (15 minutes of skew allowed) until
 * X-Amz-Date + X-Amz-Expires (at most 7 days). Signatures are compared in constant time.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { hmacHex, signingKey, type HmacPads } from '../sign/sigv4.ts';
import { canonicalHeaders, canonicalQuery, canonicalQueryFromRaw, canonicalUri, type QueryPairs } from './canonical.ts';
import { S3Error } from './errors.ts';

export const MAX_SKEW_MS = 15 * 60 * 1000;
export const MAX_PRESIGN_EXPIRES = 7 * 24 * 3600;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const AUTH_HEADER = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

export interface SigV4Request {
  method: string;
  /** The path, percent-decoded once. */
  path: string;
  query: QueryPairs;
  /** The query string as it arrived (without '?'), when known: used as the canonical query if it is in that form already. */
  rawQuery?: string;
  /** All values of a header (lower-case name), undefined when absent. */
  header: (name: string) => string[] | undefined;
}

export interface VerifiedSignature {
  accessKey: string;
  form: 'header' | 'query';
  signedHeaders: string[];
  /** x-amz-content-sha256 (header form), or UNSIGNED-PAYLOAD. */
  payloadHash: string;
  /** What chunk and trailer signatures chain from (aws-chunked bodies). */
  seed: { signature: string; amzDate: string; scope: string; key: HmacPads };
}

interface Parsed {
  form: 'header' | 'query';
  accessKey: string;
  shortDate: string;
  region: string;
  service: string;
  /** `<YYYYMMDD>/<region>/<service>/aws4_request`, the credential scope. */
  scope: string;
  signedHeaders: string[];
  /** SignedHeaders as given (';'-joined): the canonical request's signed-headers line. */
  signedList: string;
  signature: string;
  amzDate: string;
  /** amzDate in ms since the epoch. */
  at: number;
  expires: number | undefined;
  payloadHash: string;
}

const first = (req: SigV4Request, name: string): string | undefined => req.header(name)?.[0];

function queryValue(q: QueryPairs, name: string): string | undefined {
  for (let i = 0; i < q.length; i++) if (q[i][0] === name) return q[i][1];
  return undefined;
}

/** The signature's parts from the Authorization header or the X-Amz-* query parameters; nothing verified yet. */
function parse(req: SigV4Request): Parsed {
  const authorization = first(req, 'authorization');
  const algo = queryValue(req.query, 'X-Amz-Algorithm');
  if (authorization !== undefined && algo !== undefined) throw new S3Error('InvalidArgument', 400, 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified');
  let credential: string;
  let signed: string;
  let signature: string;
  let amzDate: string | undefined;
  let expires: number | undefined;
  let payloadHash: string;
  let form: Parsed['form'];
  if (authorization !== undefined) {
    const m = AUTH_HEADER.exec(authorization);
    if (!m) {
      if (authorization.startsWith('AWS ')) throw new S3Error('InvalidRequest', 400, 'Signature Version 2 is not supported: use AWS4-HMAC-SHA256');
      throw new S3Error('AccessDenied', 403, 'The Authorization header is malformed: expected AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    }
    [, credential, signed, signature] = m;
    form = 'header';
    amzDate = first(req, 'x-amz-date');
    if (amzDate === undefined) {
      const date = first(req, 'date');
      const ms = date === undefined ? NaN : Date.parse(date);
      if (Number.isFinite(ms)) amzDate = new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
    }
    const sha = first(req, 'x-amz-content-sha256');
    if (sha === undefined) throw new S3Error('InvalidRequest', 400, 'Missing required header for this request: x-amz-content-sha256');
    payloadHash = sha;
  } else if (algo !== undefined) {
    if (algo !== ALGORITHM) throw new S3Error('AuthorizationQueryParametersError', 400, `X-Amz-Algorithm only supports "${ALGORITHM}"`);
    credential = queryValue(req.query, 'X-Amz-Credential') ?? '';
    signed = queryValue(req.query, 'X-Amz-SignedHeaders') ?? '';
    signature = queryValue(req.query, 'X-Amz-Signature') ?? '';
    amzDate = queryValue(req.query, 'X-Amz-Date');
    const e = queryValue(req.query, 'X-Amz-Expires') ?? '';
    if (!/^[0-9]{1,7}$/.test(e)) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Expires must be a number of seconds');
    expires = Number(e);
    if (expires > MAX_PRESIGN_EXPIRES) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
    if (credential === '' || signed === '' || !/^[0-9a-f]{64}$/.test(signature)) {
      throw new S3Error('AuthorizationQueryParametersError', 400, 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    }
    form = 'query';
    payloadHash = queryValue(req.query, 'X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  } else {
    throw new S3Error('AccessDenied', 403, 'Anonymous access is not allowed: sign the request (AWS Signature Version 4)');
  }
  // <access key>/<YYYYMMDD>/<region>/<service>/aws4_request, taken apart with indexOf (split was a
  // tenth of a verification's time in the profile).
  const s1 = credential.indexOf('/');
  const s2 = s1 === -1 ? -1 : credential.indexOf('/', s1 + 1);
  const s3 = s2 === -1 ? -1 : credential.indexOf('/', s2 + 1);
  const s4 = s3 === -1 ? -1 : credential.indexOf('/', s3 + 1);
  if (s1 <= 0 || s2 !== s1 + 9 || s4 === -1 || credential.slice(s4 + 1) !== 'aws4_request' || !DIGITS8.test(credential.slice(s1 + 1, s2))) {
    throw new S3Error('AuthorizationQueryParametersError', 400, 'Error parsing the X-Amz-Credential parameter: expected <access key>/<YYYYMMDD>/<region>/s3/aws4_request');
  }
  const at = amzDate === undefined ? undefined : dateMs(amzDate);
  if (at === undefined) throw new S3Error('AccessDenied', 403, 'AWS authentication requires a valid Date or x-amz-date header');
  return {
    form, accessKey: credential.slice(0, s1), shortDate: credential.slice(s1 + 1, s2), region: credential.slice(s2 + 1, s3), service: credential.slice(s3 + 1, s4),
    scope: credential.slice(s1 + 1), signedHeaders: signed.split(';'), signedList: signed, signature, amzDate: amzDate as string, at, expires, payloadHash,
  };
}

const DIGITS8 = /^\d{8}$/;
let lastDay = '';
let lastDayMs = 0;

/** `20261204T161800Z` in ms since the epoch; undefined when malformed. The day's Date.UTC is kept: most requests share it. */
function dateMs(amzDate: string): number | undefined {
  const d = AMZ_DATE.exec(amzDate);
  if (d === null) return undefined;
  if (amzDate.slice(0, 8) !== lastDay) {
    lastDayMs = Date.UTC(+d[1], +d[2] - 1, +d[3]);
    lastDay = amzDate.slice(0, 8);
  }
  return lastDayMs + ((+d[4] * 60 + +d[5]) * 60 + +d[6]) * 1000;
}


/**
 * Checks the signature of `req` with the secret of its access key. `secretFor` undefined →
 * InvalidAccessKeyId. Throws S3Error; returns what body decoding needs.
 */
export function verifySigV4(req: SigV4Request, secretFor: (accessKey: string) => string | undefined, now = Date.now()): VerifiedSignature {
  const p = parse(req);
  const secret = secretFor(p.accessKey);
  if (secret === undefined) throw new S3Error('InvalidAccessKeyId', 403, 'The AWS Access Key Id you provided does not exist in our records.');
  if (p.service !== 's3') throw new S3Error('AuthorizationQueryParametersError', 400, `the credential scope names service "${p.service}": this is s3`);
  if (p.amzDate.slice(0, 8) !== p.shortDate) throw new S3Error('AccessDenied', 403, 'the date of the credential scope is not the request date');
  const { at } = p;
  if (p.form === 'header') {
    if (Math.abs(now - at) > MAX_SKEW_MS) throw new S3Error('RequestTimeTooSkewed', 403, 'The difference between the request time and the current time is too large.');
  } else {
    if (at - now > MAX_SKEW_MS) throw new S3Error('AccessDenied', 403, 'Request is not valid yet');
    if (now > at + (p.expires as number) * 1000) throw new S3Error('AccessDenied', 403, 'Request has expired');
  }
  if (!p.signedHeaders.includes('host')) throw new S3Error('AccessDenied', 403, 'the host header must be signed');
  const headers = canonicalHeaders(p.signedHeaders, req.header);
  if (headers === undefined) throw new S3Error('AccessDenied', 403, 'a header named in SignedHeaders is missing from the request');
  const skip = p.form === 'query' ? 'X-Amz-Signature' : undefined;
  const query = (req.rawQuery !== undefined ? canonicalQueryFromRaw(req.rawQuery, skip) : undefined) ?? canonicalQuery(req.query, skip);
  const canonicalRequest = `${req.method}\n${canonicalUri(req.path)}\n${query}\n${headers}\n${p.signedList}\n${p.payloadHash}`;
  const { scope } = p;
  const stringToSign = `${ALGORITHM}\n${p.amzDate}\n${scope}\n${hash('sha256', canonicalRequest, 'hex')}`;
  const key = signingKey(secret, p.shortDate, p.region, p.service);
  const expected = hmacHex(key, stringToSign);
  if (!sameHex(expected, p.signature)) {
    throw new S3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return {
    accessKey: p.accessKey, form: p.form, signedHeaders: p.signedHeaders, payloadHash: p.payloadHash,
    seed: { signature: p.signature, amzDate: p.amzDate, scope, key },
  };
}

/** Room for two signatures side by side: compared without allocating two buffers per request. */
const compareRoom = Buffer.alloc(128);

/** Constant-time equality of two hex signatures (64 characters: anything else is unequal). */
export function sameHex(a: string, b: string): boolean {
  if (a.length !== 64 || b.length !== 64) return false;
  compareRoom.write(a, 0, 'latin1');
  compareRoom.write(b, 64, 'latin1');
  return timingSafeEqual(compareRoom.subarray(0, 64), compareRoom.subarray(64));
}
