/**
 * What an S3 request may carry to the front door: an allowlist of query parameters per operation and
 * of `x-amz-*` headers. Anything else asks for S3 behaviour the door does not have (a version, an
 * ACL that would make an object public, tags, object lock, SSE-C, a copy from another key, a part of
 * an object, overridden response headers, a write only if the object is absent …) and is refused
 * with NotImplemented naming it, rather than silently served as a plain GET or PUT: a client that
 * asked for `x-amz-acl: private` or `If-None-Match: *` must not believe it got it.
 * An allowlist, so that a parameter S3 adds later is refused until someone decides what it means here.
 */
import { S3Error } from './errors.ts';

/** The signature of a presigned URL (sigv4-verify.ts) and the SDK's operation marker; on every request. */
const ALWAYS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token', 'x-id'];
const LIST = ['list-type', 'prefix', 'delimiter', 'max-keys', 'continuation-token', 'start-after', 'marker', 'encoding-type', 'fetch-owner'];
const LIST_UPLOADS = ['uploads', 'prefix', 'delimiter', 'max-uploads', 'key-marker', 'upload-id-marker', 'encoding-type'];

/** Query parameters each operation understands (by method, on the bucket or on an object). */
const QUERY: Record<string, Set<string>> = {
  'bucket GET': new Set([...ALWAYS, ...LIST, ...LIST_UPLOADS, 'location']),
  'bucket HEAD': new Set(ALWAYS),
  'object GET': new Set([...ALWAYS, 'uploadId', 'max-parts', 'part-number-marker']),
  'object HEAD': new Set(ALWAYS),
  'object PUT': new Set([...ALWAYS, 'uploadId', 'partNumber']),
  'object POST': new Set([...ALWAYS, 'uploads', 'uploadId']),
  'object DELETE': new Set([...ALWAYS, 'uploadId']),
};

/**
 * `x-amz-*` request headers the door acts on (signing, body framing and checksums, metadata), or
 * ignores knowingly: the SSE headers (the profile's ServerSideEncryption applies whatever a client
 * asks, and runners configured for SSE send them) and the SDKs' user agent.
 */
const HEADERS = new Set([
  'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token', 'x-amz-decoded-content-length', 'x-amz-trailer',
  'x-amz-sdk-checksum-algorithm', 'x-amz-user-agent',
  'x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-server-side-encryption-context',
  'x-amz-server-side-encryption-bucket-key-enabled',
]);
const HEADER_PREFIXES = ['x-amz-meta-', 'x-amz-checksum-'];

/** Preconditions: understood on reads (preconditions.ts), not on writes (no backend here can make them atomic). */
const CONDITIONAL = ['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'];

const notImplemented = (what: string): S3Error => new S3Error('NotImplemented', 501, `${what} is not supported by cachegate's S3 front door`);

export function headerAllowed(name: string): boolean {
  return HEADERS.has(name) || HEADER_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * Throws NotImplemented for a query parameter the operation does not understand, an `x-amz-*`
 * header (sent, or hoisted into a presigned URL's query) outside the allowlist, or a precondition on a write.
 */
export function checkRequestShape(method: string, onObject: boolean, query: Map<string, string>, headers: Record<string, string | string[] | undefined>): void {
  const allowed = QUERY[`${onObject ? 'object' : 'bucket'} ${method}`];
  for (const name of query.keys()) {
    // A presigner may hoist signed x-amz-* headers into the query: judged as the headers they are.
    if (/^x-amz-/i.test(name) && !ALWAYS.includes(name)) {
      if (!headerAllowed(name.toLowerCase())) throw notImplemented(`the ${name.toLowerCase()} parameter`);
    } else if (allowed !== undefined && !allowed.has(name)) {
      throw notImplemented(`the ?${name} parameter${onObject ? ` on ${method} of an object` : ` on ${method} of the bucket`}`);
    }
  }
  // A part number names a part of a multipart upload only: alone it would be read as a plain PutObject.
  if (query.has('partNumber') && !query.has('uploadId')) throw notImplemented('?partNumber without ?uploadId (a part of a stored object)');
  for (const name of Object.keys(headers)) {
    if (name.startsWith('x-amz-') && !headerAllowed(name)) throw notImplemented(`the ${name} header`);
    if (method !== 'GET' && method !== 'HEAD' && CONDITIONAL.includes(name)) throw notImplemented(`a conditional write (${name})`);
  }
}
