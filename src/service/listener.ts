/**
 * The service's Node request listener: the one place that gives every request its id (echoed from
 * a valid X-Request-Id, else generated; set on the response and carried into every log line), counts
 * it in /metrics and writes its access-log line. POST /v1/presign is answered here directly
 * (presign-route.ts); everything else goes to the hono app (app.ts).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { accessLogger, type AccessFields } from '../log.ts';
import { requestContext, type RequestContext } from '../request-context.ts';
import { createApp, type AppDeps } from './app.ts';
import { presignRoute } from './presign-route.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The route label of a path, for metrics (a fixed set: never the key or the project id). */
export function routeOf(path: string): string {
  if (path.startsWith('/v1/presign')) return 'presign';
  if (path.startsWith('/v1/cache/')) return 'cache';
  if (path.startsWith('/v1/blob/')) return 'blob';
  if (path === '/healthz') return 'healthz';
  if (path === '/readyz') return 'readyz';
  if (path === '/metrics') return 'metrics';
  if (path === '/openapi.json') return 'openapi';
  return 'other';
}

/**
 * The path as the router sees it: @hono/node-server resolves the request URL as a WHATWG URL, which
 * removes `.` and `..` segments (also written %2e), so `/v1/blob/../cache/…` runs the cache handler.
 * Metrics and the access log name what runs, from the same resolution.
 */
export function routedPath(path: string): string {
  if (!/[.%]/.test(path)) return path;
  try {
    return new URL(`http://h${path}`).pathname;
  } catch {
    return path;
  }
}

export function createListener(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics } = deps;
  const access = accessLogger(deps.log);
  const hono = getRequestListener(createApp(deps).fetch);
  const presign = presignRoute(deps);

  return (req, res) => {
    const start = performance.now();
    const given = req.headers['x-request-id'];
    const reqId = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = routedPath(q === -1 ? url : url.slice(0, q)); // signed URLs carry their signature in the query: never logged
    const route = routeOf(path);
    // On every answer (objects, JSON, errors): never let a browser guess a type from the bytes.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const ctx: RequestContext = { reqId }; // the routes add what the access line says about the request
    requestContext.run(ctx, () => {
      if (route === 'presign' && path === '/v1/presign') {
        // Answered whole by res.end(): logged then, without waiting for the socket's 'close'.
        void presign(req, res, reqId).then(() => finished(req, res.destroyed ? 499 : res.statusCode, access, metrics, route, path, start, ctx));
      } else {
        res.setHeader('X-Request-Id', reqId); // (the presign route writes it with its other headers: cheaper than merging)
        // Streams: logged when the response is over. A response cut off before its end (client
        // gone, stream failed) is logged and counted as 499.
        const socket = req.socket;
        const sentBefore = socket.bytesWritten;
        res.once('close', () => finished(req, handedOver(res, socket.bytesWritten - sentBefore) ? res.statusCode : 499, access, metrics, route, path, start, ctx));
        void hono(req, res);
      }
    });
  };
}

/**
 * Whether the whole response reached the socket. Usually res.writableFinished; but a client that has
 * read Content-Length bytes may close the connection before the server's end() (the last read of the
 * body's source is still on its way), and that download is complete: its bytes on this socket
 * (`sent`) cover the header and the declared length.
 */
function handedOver(res: ServerResponse, sent: number): boolean {
  if (res.writableFinished) return true;
  const header = (res as ServerResponse & { _header?: string | null })._header;
  const declared = Number(res.getHeader('content-length'));
  return res.headersSent && typeof header === 'string' && Number.isSafeInteger(declared) && sent >= Buffer.byteLength(header, 'latin1') + declared;
}

function finished(
  req: IncomingMessage, status: number, access: (f: AccessFields) => void, metrics: AppDeps['metrics'], route: string, path: string, start: number, ctx: RequestContext,
): void {
  const seconds = (performance.now() - start) / 1000;
  const method = req.method ?? '';
  metrics.httpRequests.inc({ route, method, status: String(status) });
  metrics.httpDuration.observe({ route }, seconds);
  if (route === 'healthz' || route === 'metrics') return;
  const a = ctx.access;
  access({ reqId: ctx.reqId, method, path, status, ms: Math.round(seconds * 1e4) / 10, ...(a && { runner: a.runner, project: a.project, key: a.key, auth: a.auth }) });
}
