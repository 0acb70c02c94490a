/**
 * The one error class of cachegate. Every error a caller can act on carries a stable
 * machine-readable `code`, an HTTP `status` and a message meant for a person.
 * Anything that is not a CacheGateError is an internal fault (500, logged, never echoed).
 */
import { withoutSignatures } from './redact-signatures.ts';

export type ErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_config'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'length_mismatch'
  | 'range_not_satisfiable'
  | 'rate_limited'
  | 'too_many_auth_failures'
  | 'backend_unavailable'
  | 'backend_error'
  | 'unsupported'
  | 'internal'
  | 'malformed_signature'
  | 'too_many_uploads'
  | 'request_timeout'
  | 'insufficient_storage';

export class CacheGateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, status: number, message: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    // A message may quote a server's answer, and that may echo the signed request (redact-signatures.ts).
    super(withoutSignatures(message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CacheGateError';
    this.code = code;
    this.status = status;
    this.headers = options?.headers;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const badRequest = (message: string): CacheGateError => new CacheGateError('invalid_request', 400, message);
export const invalidKey = (message: string): CacheGateError => new CacheGateError('invalid_key', 400, message);
export const notFound = (message = 'object not found'): CacheGateError => new CacheGateError('not_found', 404, message);
export const tooLarge = (size: number | string, max: number): CacheGateError =>
  new CacheGateError('payload_too_large', 413, `archive size (${size}) is too big (limit is set to ${max})`);
export const backendUnavailable = (message: string, cause?: unknown): CacheGateError =>
  new CacheGateError('backend_unavailable', 503, message, { cause, headers: { 'Retry-After': '5' } });
export const insufficientStorage = (message: string, cause?: unknown): CacheGateError =>
  new CacheGateError('insufficient_storage', 507, message, { cause, headers: { 'Retry-After': '60' } });
