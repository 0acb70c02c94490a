/**
 * Transfer failures as CacheGateError (the project's one error class), and which of them a retry can
 * cure: 5xx answers, network errors and short bodies are retried; 4xx answers and a deadline are not.
 */
import { CacheGateError } from '../errors.ts';

/** A failed HTTP answer: `<what> failed: 403 Forbidden (AccessDenied: Access Denied.)`. */
export function httpError(what: string, status: number, statusText: string, body: string): CacheGateError {
  const xml = parseErrorXml(body) ?? parseErrorJson(body);
  const detail = xml ? ` (${[xml.code, xml.message].filter((s) => s !== '').join(': ')})` : '';
  // cachegate's own 502 backend_error is a configuration fault (missing bucket, wrong credentials): not retried.
  const code = status >= 500 && xml?.code !== 'backend_error' ? 'backend_unavailable' : status === 404 ? 'not_found' : 'backend_error';
  return new CacheGateError(code, status, `${what} failed: ${status}${statusText ? ` ${statusText}` : ''}${detail}${hint(status, xml)}`);
}

/**
 * What a 403 most often means for a presigned upload: a header the URL signed (x-amz-meta-cachekey,
 * encryption, content-length) was not sent, or sent with another value. Said only when the storage
 * says the signature does not match (S3, GCS: SignatureDoesNotMatch; cachegate's local URLs: forbidden).
 */
function hint(status: number, e: { code: string; message: string } | undefined): string {
  const mismatch = e?.code === 'SignatureDoesNotMatch' || (e?.code === 'forbidden' && e.message.includes('signature does not match'));
  if (status !== 403 || !mismatch) return '';
  return ': a signed header is missing or different, or the URL was altered; send every header of the presign answer (its helperArgs carry them as --header)';
}

/** cachegate's own {"error":{"code","message"}} (local backend URLs, proxy mode). */
function parseErrorJson(body: string): { code: string; message: string } | undefined {
  if (!body.startsWith('{')) return undefined;
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }).error;
    return e && typeof e.code === 'string' && typeof e.message === 'string' ? { code: e.code, message: e.message } : undefined;
  } catch {
    return undefined;
  }
}

/** A body shorter or longer than announced, or an answer that does not match the request. */
export function badAnswer(what: string, message: string): CacheGateError {
  return new CacheGateError('backend_unavailable', 502, `${what} failed: ${message}`);
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function xmlText(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) =>
    e[0] === '#' ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : entities[e]);
}

/** `<Error><Code>…</Code><Message>…</Message></Error>` of S3 (and GCS, Azure); undefined when absent. */
export function parseErrorXml(body: string): { code: string; message: string } | undefined {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  if (code === undefined && message === undefined) return undefined;
  return { code: xmlText(code ?? '').trim(), message: xmlText((message ?? '').split('\n')[0]).trim() };
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

/** Whether another attempt may succeed. */
export function isRetryable(err: unknown): boolean {
  if (isAbort(err)) return false;
  if (err instanceof CacheGateError) return (err.status >= 500 && err.code !== 'backend_error') || err.status === 408 || err.status === 429;
  return true; // ECONNRESET, ECONNREFUSED, EPIPE, 'aborted' bodies, DNS hiccups
}

/** The deadline, as an error a user can act on. */
export function timeoutError(what: string, timeoutMs: number): CacheGateError {
  return new CacheGateError('backend_unavailable', 504, `${what} failed: no answer within the timeout (${Math.round(timeoutMs / 1000)} s)`);
}
