/**
 * How an error leaves the service: {"error":{"code","message"}} with its status, never a stack
 * trace. Anything that is not a CacheGateError is an internal fault: logged, answered as 500 with
 * the request id only.
 */
import { CacheGateError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { withoutSignatures } from '../redact-signatures.ts';

export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  /** null for HEAD */
  body: string | null;
}

/** Seconds a client is told to wait after a 503 that does not say otherwise. */
export const DEFAULT_RETRY_AFTER = '5';

export function errorAnswer(err: unknown, method: string, reqId: string, log: Logger): ErrorAnswer {
  let e: CacheGateError;
  if (err instanceof CacheGateError) {
    e = err;
    if (e.status >= 500) log.error({ code: e.code, cause: describeCause(e.cause) }, e.message);
  } else {
    log.error({ err: describeCause(err) }, 'internal error');
    e = new CacheGateError('internal', 500, `internal error; see the service log for request id ${reqId}`);
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(e.headers ?? {}) };
  if (e.status === 503 && headers['Retry-After'] === undefined) headers['Retry-After'] = DEFAULT_RETRY_AFTER;
  // A refused upload may still be sending: close the connection rather than read gigabytes to discard them.
  if (e.status === 413 || (method === 'PUT' && e.status >= 400)) headers.Connection = 'close';
  return { status: e.status, headers, body: method === 'HEAD' ? null : JSON.stringify(e.toJSON()) };
}

/** Name and message of an error, without stack or request details that could carry secrets. */
export function describeCause(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  if (err instanceof Error) return withoutSignatures(`${err.name}: ${err.message}`).slice(0, 500);
  return withoutSignatures(String(err)).slice(0, 500);
}
