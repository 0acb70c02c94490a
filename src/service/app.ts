/**
 * The HTTP API (SPEC §4) as a hono app. Routes only parse, authenticate and hand over to
 * presign.ts / objects.ts; every error leaves as {"error":{"code","message"}} with a 4xx/5xx status,
 * never a stack trace.
 */
import { randomUUID } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { CacheGateError } from '../errors.ts';
import { goQuote } from '../keys/go-quote.ts';
import { resolveKey } from '../keys/resolve.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';
import { META_HEADER_PREFIX, backendCall, getObject, headObject, putObject } from './objects.ts';
import { readJsonBody } from './json-body.ts';
import { openApiDocument } from './openapi.ts';
import { parsePresignRequest, presign } from './presign.ts';
import type { Principal, ServiceState } from './state.ts';

export const MAX_JSON_BODY = 64 * 1024;

export interface AppDeps {
  state: () => ServiceState;
  metrics: Metrics;
  log: Logger;
  version: string;
}

type Env = { Bindings: HttpBindings; Variables: { reqId: string; route: string } };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function createApp(deps: AppDeps): Hono<Env> {
  const { metrics, log } = deps;
  const app = new Hono<Env>();

  app.use('*', async (c, next) => {
    const start = performance.now();
    const given = header(c, 'x-request-id');
    const reqId = given && REQUEST_ID.test(given) ? given : randomUUID();
    c.set('reqId', reqId);
    c.set('route', 'other');
    // On the Node socket directly: c.header() would make hono build a Headers object for every
    // response, which costs more than the rest of the middleware (measured: 18k → 30k req/s).
    const outgoing = c.env?.outgoing;
    if (outgoing) outgoing.setHeader('X-Request-Id', reqId);
    else c.header('X-Request-Id', reqId);
    await next();
    const route = c.get('route');
    const seconds = (performance.now() - start) / 1000;
    metrics.httpRequests.inc({ route, method: c.req.method, status: String(c.res.status) });
    metrics.httpDuration.observe({ route }, seconds);
    if (route !== 'healthz' && route !== 'metrics') {
      // The path without its query: signed URLs carry their signature in the query.
      log.info({ reqId, method: c.req.method, path: pathOf(c), status: c.res.status, ms: Math.round(seconds * 1e4) / 10 }, 'request');
    }
  });

  app.onError((err, c) => errorResponse(err, c, log));
  app.notFound((c) => errorResponse(new CacheGateError('not_found', 404, `no route for ${c.req.method} ${c.req.path}`), c, log));

  app.get('/healthz', (c) => {
    c.set('route', 'healthz');
    return c.json({ status: 'ok' });
  });

  app.get('/readyz', async (c) => {
    c.set('route', 'readyz');
    const state = deps.state();
    const backends: Record<string, string> = {};
    let ready = true;
    await Promise.all(
      [...state.adapters.entries()].map(async ([name, adapter]) => {
        try {
          await withTimeout(adapter.ready(), 5000);
          backends[name] = 'ok';
        } catch (err) {
          ready = false;
          backends[name] = err instanceof CacheGateError ? err.message : 'unreachable';
        }
      }),
    );
    if (!ready) c.header('Retry-After', '5');
    return c.json({ status: ready ? 'ready' : 'unavailable', backends }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    c.set('route', 'metrics');
    return c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });

  app.get('/openapi.json', (c) => {
    c.set('route', 'openapi');
    return c.json(openApiDocument(deps.version));
  });

  app.post('/v1/presign', async (c) => {
    c.set('route', 'presign');
    const state = deps.state();
    const principal = authenticate(c, state);
    const body = await readJsonBody(c.env?.incoming, () => c.req.arrayBuffer(), MAX_JSON_BODY);
    const req = parsePresignRequest(body);
    const adapter = state.adapterFor(principal.profile);
    const start = performance.now();
    try {
      const answer = await backendCall(adapter, () =>
        presign(req, {
          principal,
          adapter,
          defaultLifetime: state.config.service.defaultUrlLifetime,
          maxLifetime: state.config.service.maxUrlLifetime,
          onSanitized: (raw, human) => log.warn({ reqId: c.get('reqId') }, `cache key ${goQuote(raw)} sanitized to ${goQuote(human)}`),
        }),
      );
      metrics.presigns.inc({ operation: req.operation, backend: adapter.kind, result: 'ok' });
      return c.json(answer);
    } catch (err) {
      const code = err instanceof CacheGateError ? err.code : 'internal';
      metrics.presigns.inc({ operation: req.operation, backend: adapter.kind, result: code });
      if (code === 'payload_too_large') metrics.sizeRefusals.inc({ where: 'presign' });
      throw err;
    } finally {
      metrics.presignDuration.observe({ backend: adapter.kind }, (performance.now() - start) / 1000);
    }
  });
  app.all('/v1/presign', () => {
    throw new CacheGateError('method_not_allowed', 405, 'use POST', { headers: { Allow: 'POST' } });
  });

  // Proxy mode: the service streams the bytes itself.
  app.on(['GET', 'HEAD', 'PUT'], '/v1/cache/:projectId/*', async (c) => {
    c.set('route', 'cache');
    const state = deps.state();
    if (!state.config.service.proxy) throw new CacheGateError('not_found', 404, 'proxy mode is turned off ([cachegate] proxy = false)');
    const principal = authenticate(c, state);
    const method = c.req.method;
    if (method === 'PUT' && principal.readOnly) throw new CacheGateError('forbidden', 403, 'this token is read-only: it cannot upload');
    const projectId = c.req.param('projectId');
    if (!/^[0-9]{1,19}$/.test(projectId)) throw new CacheGateError('invalid_request', 400, 'projectId: must be a GitLab project id (digits)');
    const rawKey = proxyKey(new URL(c.req.url).pathname, projectId);
    const hashKeys = c.req.query('hashKeys') === 'true';
    const { profile } = principal;
    const resolved = resolveKey(rawKey, { path: profile.cache.path, shared: profile.cache.shared, shortToken: profile.shortToken, projectId }, hashKeys);
    if (resolved.changed) log.warn({ reqId: c.get('reqId') }, `cache key ${goQuote(resolved.raw)} sanitized to ${goQuote(resolved.human)}`);
    const adapter = state.adapterFor(profile);
    const r = { adapter, objectName: resolved.objectName, metrics };
    if (method === 'HEAD') return headObject(r);
    if (method === 'GET') return getObject(r, header(c, 'range'));
    return putObject({ ...r, incoming: c.env.incoming, metadata: resolved.metadata, maxSize: profile.cache.maxUploadedArchiveSize, where: 'proxy' });
  });

  // The local backend's presigned URLs: the signature is the authorization.
  app.on(['GET', 'HEAD', 'PUT'], '/v1/blob/*', async (c) => {
    c.set('route', 'blob');
    const adapter = deps.state().blobAdapter;
    if (!adapter) throw new CacheGateError('not_found', 404, 'no profile uses the embedded local backend');
    const url = new URL(c.req.url);
    const { objectName, maxSize, signedHeaders } = adapter.verifySigned({ method: c.req.method, path: url.pathname, query: url.searchParams, header: (n) => header(c, n) });
    const r = { adapter, objectName, metrics };
    if (c.req.method === 'HEAD') return headObject(r);
    if (c.req.method === 'GET') return getObject(r, header(c, 'range'));
    // Only signed metadata is stored: a client cannot add x-amz-meta-* headers of its own.
    const metadata: Record<string, string> = {};
    for (const name of signedHeaders) {
      const v = header(c, name);
      if (name.startsWith(META_HEADER_PREFIX) && v !== undefined) metadata[name.slice(META_HEADER_PREFIX.length)] = v;
    }
    return putObject({ ...r, incoming: c.env.incoming, metadata, maxSize, where: 'blob' });
  });

  return app;
}

/**
 * A request header, from Node's already-parsed headers when running on Node: asking hono
 * (c.req.header) makes the node adapter build a full web Headers object for the request, which
 * costs ~10 µs, a tenth of a presign (measured).
 */
function header(c: Context<Env>, name: string): string | undefined {
  const incoming = c.env?.incoming;
  if (!incoming) return c.req.header(name);
  const v = incoming.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The request path without its query (signed URLs carry their signature in the query). */
function pathOf(c: Context<Env>): string {
  const url = c.env?.incoming?.url;
  if (url === undefined) return c.req.path;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The key part of /v1/cache/<projectId>/<key…>, percent-decoded once (a key's own '/' may be sent as %2F). */
function proxyKey(path: string, projectId: string): string {
  const prefix = `/v1/cache/${projectId}/`;
  const encoded = path.startsWith(prefix) ? path.slice(prefix.length) : '';
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new CacheGateError('invalid_key', 400, 'the key in the path is not valid percent-encoding');
  }
}

function authenticate(c: Context<Env>, state: ServiceState): Principal {
  if (state.anonymous) return state.anonymous;
  const h = header(c, 'authorization');
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  if (!m) throw new CacheGateError('unauthorized', 401, 'missing token: send Authorization: Bearer <runner or API token>', { headers: { 'WWW-Authenticate': 'Bearer' } });
  const principal = state.authenticate(m[1]);
  if (!principal) throw new CacheGateError('unauthorized', 401, 'unknown token', { headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } });
  return principal;
}

function errorResponse(err: unknown, c: Context<Env>, log: Logger): Response {
  const reqId = c.get('reqId');
  let e: CacheGateError;
  if (err instanceof CacheGateError) {
    e = err;
    if (e.status >= 500) log.error({ reqId, code: e.code, cause: describeCause(e.cause) }, e.message);
  } else {
    log.error({ reqId, err: describeCause(err) }, 'internal error');
    e = new CacheGateError('internal', 500, 'internal error; see the service log for request id ' + reqId);
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'X-Request-Id': reqId ?? '', ...(e.headers ?? {}) };
  // A refused upload may still be sending: close the connection rather than read gigabytes to discard them.
  if (e.status === 413 || (c.req.method === 'PUT' && e.status >= 400)) headers.Connection = 'close';
  const body = c.req.method === 'HEAD' ? null : JSON.stringify(e.toJSON());
  return new Response(body, { status: e.status, headers });
}

/** Name and message of an error, without stack or request details that could carry secrets. */
function describeCause(err: unknown): string | undefined {
  if (err === undefined) return undefined;
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 500);
  return String(err).slice(0, 500);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CacheGateError('backend_unavailable', 503, `no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
