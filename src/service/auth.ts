/**
 * Who is asking: the bearer token of a request → its principal, then that principal's rate limit.
 */
import { CacheGateError } from '../errors.ts';
import { noteRequest } from '../request-context.ts';
import type { Principal, ServiceState } from './state.ts';

export const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * The principal for an Authorization header value; 401 when absent or unknown, 429 over the rate
 * limit, or when `from` (the client's address) has failed to authenticate too often.
 */
export function authenticate(authorization: string | undefined, state: ServiceState, from?: string): Principal {
  let principal = state.anonymous;
  if (!principal) {
    const m = authorization ? BEARER.exec(authorization) : null;
    if (!m) {
      const notBearer = authorization !== undefined && authorization.trim() !== '';
      noteRequest({ auth: notBearer ? 'not_bearer' : 'missing' });
      const message = notBearer
        ? 'the Authorization header is not "Bearer <token>": put "Bearer " before the runner or API token'
        : 'missing token: send Authorization: Bearer <runner or API token>';
      throw new CacheGateError('unauthorized', 401, message, { headers: { 'WWW-Authenticate': 'Bearer' } });
    }
    refuseLockedAddress(state, from);
    principal = state.authenticate(m[1]);
    if (!principal) {
      noteRequest({ auth: 'unknown' });
      state.authFailures.failed(from);
      throw new CacheGateError('unauthorized', 401, 'unknown token', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
    }
  }
  noteRequest({ runner: principal.profile.name, auth: principal === state.anonymous ? 'anonymous' : 'ok' });
  state.limiter.take(principal.id, undefined, principal.label);
  return principal;
}

/** 429 before any credential of `from` is looked at, while its failed authentications are used up ([cachegate] auth_failure_limit). */
export function refuseLockedAddress(state: ServiceState, from: string | undefined): void {
  const wait = state.authFailures.wait(from);
  if (wait === 0) return;
  noteRequest({ auth: 'locked' });
  const { rate, burst } = state.authFailures;
  throw new CacheGateError('too_many_auth_failures', 429, `too many failed authentications from this address: ${burst} at once, then ${rate} per second ([cachegate] auth_failure_limit); retry in ${wait} s`, { headers: { 'Retry-After': String(wait) } });
}
