/**
 * Verifies an AWS Signature Version 4 on an incoming S3 request, in both forms: the Authorization
 * header (SDKs, CLIs) and the presigned query string (what runners hand their helper). Time rules
 * as AWS applies them: a header-signed request more than 15 minutes off the server's clock is
 * RequestTimeTooSkewed; a presigned URL is valid from X-Amz-Date (15 minutes of skew allowed) until
 * X-Amz-Date + X-Amz-Expires (at most 7 days). Signatures are compared in constant time.
 */
import { signatureOf, signingKey, type HmacPads } from '../sign/sigv4.ts';
import { canonicalHeaders, canonicalQuery, canonicalUri, type ReadQuery } from './canonical.ts';
import { S3Error } from './errors.ts';

export const MAX_SKEW_MS = 15 * 60 * 1000;
export const MAX_PRESIGN_EXPIRES = 7 * 24 * 3600;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const AUTH_HEADER = /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/;

export interface SigV4Request {
  method: string;
  /** The path, percent-decoded once. */
  path: string;
  /** The query string as readQuery() took it apart. */
  query: ReadQuery;
  /** All values of a header (lower-case name), undefined when absent. */
  header: (name: string) => string[] | undefined;
}

export interface VerifiedSignature {
  accessKey: string;
  form: 'header' | 'query';
  signedHeaders: readonly string[];
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
  signedHeaders: readonly string[];
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

/** The X-Amz-* parameters of a presigned URL, found in one pass over the pairs. */
interface PresignParams {
  algorithm?: string;
  credential?: string;
  signedHeaders?: string;
  signature?: string;
  date?: string;
  expires?: string;
  contentSha256?: string;
}

function presignParams(pairs: ReadQuery['pairs']): PresignParams {
  const out: PresignParams = {};
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i];
    const name = pair[0];
    const value = pair[1];
    // By length, then one comparison: a startsWith('X-Amz-') test per pair cost more than the rest
    // of this loop (the names are slices of the URL, V8's slow path for startsWith).
    switch (name.length) {
      case 10: if (name === 'X-Amz-Date') out.date ??= value; break;
      case 13: if (name === 'X-Amz-Expires') out.expires ??= value; break;
      case 15:
        if (name === 'X-Amz-Algorithm') out.algorithm ??= value;
        else if (name === 'X-Amz-Signature') out.signature ??= value;
        break;
      case 16: if (name === 'X-Amz-Credential') out.credential ??= value; break;
      case 19: if (name === 'X-Amz-SignedHeaders') out.signedHeaders ??= value; break;
      case 20: if (name === 'X-Amz-Content-Sha256') out.contentSha256 ??= value; break;
    }
  }
  return out;
}

/** The signature's parts from the Authorization header or the X-Amz-* query parameters; nothing verified yet. */
function parse(req: SigV4Request): Parsed {
  const authorization = first(req, 'authorization');
  const q = presignParams(req.query.pairs);
  const algo = q.algorithm;
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
    credential = q.credential ?? '';
    signed = q.signedHeaders ?? '';
    signature = q.signature ?? '';
    amzDate = q.date;
    const e = q.expires ?? '';
    if (e.length === 0 || e.length > 7 || Number.isNaN(digits(e, 0, e.length))) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Expires must be a number of seconds');
    expires = digits(e, 0, e.length);
    if (expires > MAX_PRESIGN_EXPIRES) throw new S3Error('AuthorizationQueryParametersError', 400, 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
    // A signature of 64 characters that are not lower-case hex fails the comparison: SignatureDoesNotMatch, as AWS answers it.
    if (credential === '' || signed === '' || signature.length !== 64) {
      throw new S3Error('AuthorizationQueryParametersError', 400, 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
    }
    form = 'query';
    payloadHash = q.contentSha256 ?? 'UNSIGNED-PAYLOAD';
  } else {
    throw new S3Error('AccessDenied', 403, 'Anonymous access is not allowed: sign the request (AWS Signature Version 4)');
  }
  const c = credentialParts(credential);
  if (c === undefined) throw new S3Error('AuthorizationQueryParametersError', 400, 'Error parsing the X-Amz-Credential parameter: expected <access key>/<YYYYMMDD>/<region>/s3/aws4_request');
  const at = amzDate === undefined ? undefined : dateMs(amzDate);
  if (at === undefined) throw new S3Error('AccessDenied', 403, 'AWS authentication requires a valid Date or x-amz-date header');
  return {
    form, accessKey: c.accessKey, shortDate: c.shortDate, region: c.region, service: c.service,
    scope: c.scope, signedHeaders: signedNames(signed), signedList: signed, signature, amzDate: amzDate as string, at, expires, payloadHash,
  };
}

interface CredentialParts { accessKey: string; shortDate: string; region: string; service: string; scope: string }

/**
 * `<access key>/<YYYYMMDD>/<region>/<service>/aws4_request` taken apart; undefined when malformed.
 * The last one is kept, as is the last SignedHeaders list: a client's requests repeat them all day.
 */
let lastCredential = '';
let lastParts: CredentialParts | undefined;

function credentialParts(credential: string): CredentialParts | undefined {
  if (credential === lastCredential) return lastParts;
  const s1 = credential.indexOf('/');
  const s2 = s1 === -1 ? -1 : credential.indexOf('/', s1 + 1);
  const s3 = s2 === -1 ? -1 : credential.indexOf('/', s2 + 1);
  const s4 = s3 === -1 ? -1 : credential.indexOf('/', s3 + 1);
  if (s1 <= 0 || s2 !== s1 + 9 || s4 === -1 || credential.slice(s4 + 1) !== 'aws4_request' || Number.isNaN(digits(credential, s1 + 1, s2))) {
    return undefined;
  }
  lastParts = { accessKey: credential.slice(0, s1), shortDate: credential.slice(s1 + 1, s2), region: credential.slice(s2 + 1, s3), service: credential.slice(s3 + 1, s4), scope: credential.slice(s1 + 1) };
  lastCredential = credential;
  return lastParts;
}

let lastSigned = '';
let lastNames: readonly string[] = [];

/** SignedHeaders as names (frozen: the same array is handed to every request that signs the same list). */
function signedNames(signed: string): readonly string[] {
  if (signed !== lastSigned) {
    lastNames = Object.freeze(signed.split(';'));
    lastSigned = signed;
  }
  return lastNames;
}

let lastDay = '-'; // never a date
let lastDayMs = 0;

/**
 * `20261204T161800Z` in ms since the epoch; undefined when malformed. Read with char codes (a regular
 * expression with six groups and six number conversions cost more than the rest of the parsing); the
 * day's Date.UTC is kept: most requests share it.
 */
function dateMs(amzDate: string): number | undefined {
  if (amzDate.length !== 16 || amzDate.charCodeAt(8) !== 0x54 || amzDate.charCodeAt(15) !== 0x5a) return undefined; // 'T', 'Z'
  const clock = (digits(amzDate, 9, 11) * 60 + digits(amzDate, 11, 13)) * 60 + digits(amzDate, 13, 15);
  if (Number.isNaN(clock)) return undefined;
  if (amzDate.slice(0, 8) !== lastDay) {
    const ms = Date.UTC(digits(amzDate, 0, 4), digits(amzDate, 4, 6) - 1, digits(amzDate, 6, 8));
    if (Number.isNaN(ms)) return undefined;
    lastDayMs = ms;
    lastDay = amzDate.slice(0, 8);
  }
  return lastDayMs + clock * 1000;
}

/** The decimal number s[from, to); NaN unless all are ASCII digits. */
function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
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
  const query = p.form === 'query'
    ? req.query.canonicalUnsigned ?? canonicalQuery(req.query.pairs, 'X-Amz-Signature')
    : req.query.canonical ?? canonicalQuery(req.query.pairs);
  const canonicalRequest = `${req.method}\n${canonicalUri(req.path)}\n${query}\n${headers}\n${p.signedList}\n${p.payloadHash}`;
  const { scope } = p;
  const key = signingKey(secret, p.shortDate, p.region, p.service);
  const expected = signatureOf(key, `${ALGORITHM}\n${p.amzDate}\n${scope}\n`, canonicalRequest);
  if (!sameHex(expected, p.signature)) {
    throw new S3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return {
    accessKey: p.accessKey, form: p.form, signedHeaders: p.signedHeaders, payloadHash: p.payloadHash,
    seed: { signature: p.signature, amzDate: p.amzDate, scope, key },
  };
}

/**
 * Constant-time equality of two hex signatures (64 characters: anything else is unequal): every
 * character pair is XORed into one accumulator, no branch depends on where they differ. Why not
 * timingSafeEqual: it needs both as Buffers, and writing them was a twentieth of a verification.
 */
export function sameHex(a: string, b: string): boolean {
  if (a.length !== 64 || b.length !== 64) return false;
  let diff = 0;
  for (let i = 0; i < 64; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
