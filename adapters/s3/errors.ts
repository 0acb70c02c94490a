/** SDK error → CacheGateError, without leaking secrets. */
import { CacheGateError, backendUnavailable } from '../../src/errors.ts';

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
  return httpStatusOf(err) === 404 || e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.Code === 'NoSuchKey';
}

/** Replace every occurrence of the given secrets by '***'. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
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

/**
 * Network errors, 5xx and a missing bucket: 503 (backend unavailable, Retry-After).
 * Other answers of the server (403, 400…): 502 backend_error with the server's reason.
 */
export function toCacheGateError(err: unknown, operation: string, secrets: readonly string[]): CacheGateError {
  if (err instanceof CacheGateError) return err;
  const status = httpStatusOf(err);
  const text = `S3 ${operation} failed: ${describe(err, secrets)}`;
  if (status === undefined || status >= 500 || (err as SdkErrorShape)?.name === 'NoSuchBucket') return backendUnavailable(text);
  return new CacheGateError('backend_error', 502, text);
}
