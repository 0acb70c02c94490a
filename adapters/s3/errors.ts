/** SDK error → CacheGateError, without leaking secrets. */
import { CacheGateError, backendUnavailable } from '../../src/errors.ts';
import { withoutSignatures } from '../../src/redact-signatures.ts';
import { misconfigured } from '../backend-fault.ts';

export interface SdkErrorShape {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

export function httpStatusOf(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(err: unknown): boolean {
  const e = err as SdkErrorShape;
  // Not NoSuchBucket: a missing bucket is a configuration fault, not a cache miss.
  if (s3Code(err) === 'NoSuchBucket') return false;
  return httpStatusOf(err) === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.Code === 'NoSuchKey';
}

/** Replace every occurrence of the given secrets by '***', and any signed-request material the server echoed. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = withoutSignatures(text);
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

export function describe(err: unknown, secrets: readonly string[]): string {
  const e = err as SdkErrorShape;
  const status = httpStatusOf(err);
  const name = e?.name ?? 'Error';
  const message = e?.message ?? String(err);
  return redact(`${name}${status === undefined ? '' : ` (HTTP ${status})`}: ${message}`, secrets);
}

/** The error code S3 answered (`NoSuchBucket`, `SignatureDoesNotMatch`, …); for HEAD, only the status's name. */
export function s3Code(err: unknown): string {
  const e = err as SdkErrorShape | undefined;
  return e?.Code ?? e?.name ?? '';
}

/**
 * The setting an S3 refusal points at (backend-fault.ts): undefined when the answer says nothing
 * about the configuration (a 400 for a malformed request, say).
 */
export function s3Check(code: string, status: number | undefined, bucket: string): string | undefined {
  switch (code) {
    case 'NoSuchBucket':
      return `BucketName ("${bucket}" does not exist on this server) and ServerAddress`;
    case 'InvalidAccessKeyId':
    case 'InvalidClientTokenId':
      return 'AccessKey (the server does not know it)';
    case 'SignatureDoesNotMatch':
      return 'SecretKey (the signature made with it does not match)';
    case 'ExpiredToken':
    case 'InvalidToken':
    case 'TokenRefreshRequired':
      return 'SessionToken (expired or not valid)';
    case 'AuthorizationHeaderMalformed':
    case 'PermanentRedirect':
    case 'IllegalLocationConstraintException':
      return `BucketLocation (the bucket "${bucket}" is in another region)`;
  }
  if (status === 401 || status === 403) return `AccessKey/SecretKey and the permissions of those credentials on bucket "${bucket}"`;
  if (status === 301) return `BucketLocation and ServerAddress (bucket "${bucket}" answered with a redirect)`;
  return undefined;
}

/**
 * Network errors, timeouts, 5xx and 429: 503 (backend unavailable, Retry-After).
 * A missing bucket, wrong or denied credentials: 502 backend_error naming the setting to check.
 * Other answers of the server (400…): 502 backend_error with the server's reason.
 */
export function toCacheGateError(err: unknown, operation: string, secrets: readonly string[], bucket = '', code = s3Code(err)): CacheGateError {
  if (err instanceof CacheGateError) return err;
  const status = httpStatusOf(err);
  const text = `S3 ${operation} failed: ${describe(err, secrets)}`;
  if (status === undefined || status >= 500 || status === 429) return backendUnavailable(text);
  const check = s3Check(code, status, bucket);
  if (check !== undefined) return misconfigured(text, check, err);
  return new CacheGateError('backend_error', 502, text);
}
