/**
 * Errors of the S3 front door as S3 clients read them:
 * `<Error><Code>…</Code><Message>…</Message><RequestId>…</RequestId></Error>`.
 *
 * S3Error is a CacheGateError, so that adapters pass it through unchanged when a request body fails
 * its check mid-stream (a bad chunk signature or checksum reaches the adapter as the body's error).
 * Any other CacheGateError (key rules, size caps, backend failures) maps to an S3 code by status.
 */
import { CacheGateError, type ErrorCode } from '../errors.ts';

export type S3Code =
  | 'AccessDenied' | 'SignatureDoesNotMatch' | 'InvalidAccessKeyId' | 'RequestTimeTooSkewed' | 'AuthorizationQueryParametersError'
  | 'NoSuchKey' | 'NoSuchBucket' | 'NoSuchUpload' | 'EntityTooLarge' | 'EntityTooSmall' | 'BadDigest' | 'XAmzContentSHA256Mismatch'
  | 'InvalidDigest' | 'IncompleteBody' | 'InvalidArgument' | 'InvalidRequest' | 'InvalidRange' | 'InvalidPart' | 'InvalidPartOrder'
  | 'MalformedXML' | 'MissingContentLength' | 'PreconditionFailed' | 'NotImplemented' | 'MethodNotAllowed' | 'SlowDown' | 'ServiceUnavailable' | 'InternalError';

const ERROR_CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 411: 'invalid_request', 412: 'invalid_request', 416: 'range_not_satisfiable', 501: 'unsupported', 503: 'backend_unavailable',
};

export class S3Error extends CacheGateError {
  readonly s3Code: S3Code;

  constructor(s3Code: S3Code, status: number, message: string, headers?: Record<string, string>) {
    super(ERROR_CODE_BY_STATUS[status] ?? 'internal', status, message, headers ? { headers } : undefined);
    this.s3Code = s3Code;
  }
}

export const accessDenied = (message = 'Access Denied'): S3Error => new S3Error('AccessDenied', 403, message);

/** Seconds an S3 client is told to wait after a 503. */
const RETRY_AFTER = '5';

/**
 * The S3 form of any error. 502 (the backend refused cachegate's own request: its configuration is
 * wrong) keeps its status with InternalError, which clients retry a few times and then report;
 * 503 (backend unreachable) and 429 (rate limit) become ServiceUnavailable / SlowDown with status 503
 * and Retry-After, which every S3 client backs off on.
 */
export function toS3Error(err: unknown): S3Error | undefined {
  if (err instanceof S3Error) return err;
  if (!(err instanceof CacheGateError)) return undefined;
  const retry = { 'Retry-After': err.headers?.['Retry-After'] ?? RETRY_AFTER };
  switch (err.status) {
    case 400: return new S3Error(err.code === 'invalid_key' ? 'InvalidArgument' : 'InvalidRequest', 400, err.message);
    case 401:
    case 403: return new S3Error('AccessDenied', 403, err.message);
    case 404: return new S3Error('NoSuchKey', 404, 'The specified key does not exist.');
    case 413: return new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size: ${err.message}`);
    case 416: return new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', err.headers);
    case 429: return new S3Error('SlowDown', 503, err.code === 'too_many_auth_failures' ? err.message : 'Please reduce your request rate.', retry);
    // too many uploads at once is the door asking clients to slow down: SlowDown is what SDKs throttle on
    case 503: return new S3Error(err.code === 'too_many_uploads' ? 'SlowDown' : 'ServiceUnavailable', 503, err.message, retry);
    case 502: return new S3Error('InternalError', 502, err.message);
    default: return err.status >= 500 ? new S3Error('InternalError', 500, err.message) : new S3Error('InvalidRequest', err.status, err.message);
  }
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);
}

export function errorXml(e: S3Error, requestId: string, resource?: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.s3Code}</Code><Message>${xmlEscape(e.message)}</Message>` +
    (resource !== undefined ? `<Resource>${xmlEscape(resource)}</Resource>` : '') + `<RequestId>${xmlEscape(requestId)}</RequestId></Error>`;
}
