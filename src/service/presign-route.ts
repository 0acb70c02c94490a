/**
 * POST /v1/presign on Node's own request/response objects, in front of hono: the route every job
 * calls, so it skips the web Request/Response translation (measured: hono's adapter alone made a
 * POST with a body cost more than the whole presign). Same answers, errors and metrics as the rest.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheGateError } from '../errors.ts';
import { goQuote } from '../keys/go-quote.ts';
import { noteRequest } from '../request-context.ts';
import type { Logger } from '../log.ts';
import { authenticate } from './auth.ts';
import { errorAnswer } from './error-response.ts';
import { readJsonBody } from './json-body.ts';
import type { Metrics } from './metrics.ts';
import { backendCall } from './objects.ts';
import { parsePresignRequest, presign } from './presign.ts';
import type { ServiceState } from './state.ts';
import { continueIfExpected } from './upload-slots.ts';

export const MAX_JSON_BODY = 64 * 1024;

export interface PresignRouteDeps {
  state: () => ServiceState;
  metrics: Metrics;
  log: Logger;
}

export function presignRoute(deps: PresignRouteDeps): (req: IncomingMessage, res: ServerResponse, reqId: string) => Promise<void> {
  const { metrics, log } = deps;
  const onSanitized = (raw: string, human: string): void => log.warn({}, `cache key ${goQuote(raw)} sanitized to ${goQuote(human)}`);

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<string> => {
    if (req.method !== 'POST') throw new CacheGateError('method_not_allowed', 405, 'use POST', { headers: { Allow: 'POST' } });
    const state = deps.state();
    const principal = authenticate(req.headers.authorization, state, req.socket.remoteAddress);
    continueIfExpected(req, res);
    const body = await readJsonBody(req, MAX_JSON_BODY);
    const parsed = parsePresignRequest(body);
    noteRequest({ project: parsed.projectId, key: parsed.key });
    const adapter = state.adapterFor(principal.profile);
    const { service } = state.config;
    const start = performance.now();
    let result = 'ok';
    try {
      const presigned = await backendCall(
        adapter,
        () => presign(parsed, { principal, adapter, defaultLifetime: service.defaultUrlLifetime, maxLifetime: service.maxUrlLifetime, onSanitized }),
        service.backendTimeout * 1000,
      );
      return JSON.stringify(presigned);
    } catch (err) {
      result = err instanceof CacheGateError ? err.code : 'internal';
      if (result === 'payload_too_large') metrics.sizeRefusals.inc({ where: 'presign' });
      throw err;
    } finally {
      metrics.presigns.inc({ operation: parsed.operation, backend: adapter.kind, result, runner: principal.profile.name });
      metrics.presignDuration.observe({ backend: adapter.kind }, (performance.now() - start) / 1000);
    }
  };

  return async (req, res, reqId) => {
    let status = 200;
    let headers: Record<string, string> = { 'Content-Type': 'application/json' };
    let body: string | null;
    try {
      body = await answer(req, res);
    } catch (err) {
      ({ status, headers, body } = errorAnswer(err, req.method ?? 'POST', reqId, log));
    }
    headers['X-Request-Id'] = reqId;
    if (body !== null) headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(status, headers);
    res.end(body);
  };
}
