/**
 * The HTTP API (SPEC §4) apart from POST /v1/presign (presign-route.ts), as a hono app behind the
 * request listener (listener.ts: request id, metrics, access log). Routes only parse, authenticate
 * and hand over to objects.ts; every error leaves as {"error":{"code","message"}} with a 4xx/5xx
 * status, never a stack trace.
 */
import type { HttpBindings } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { CacheGateError } from '../errors.ts';
import { goQuote } from '../keys/go-quote.ts';
import { resolveKey } from '../keys/resolve.ts';
import type { Logger } from '../log.ts';
import { adminUsage } from './admin.ts';
import { noteRequest } from '../request-context.ts';
import { authenticate } from './auth.ts';
import { DEFAULT_RETRY_AFTER, errorAnswer } from './error-response.ts';
import type { Metrics } from './metrics.ts';
import { META_HEADER_PREFIX, getObject, headObject, putObject, type PutRequest } from './objects.ts';
import { openApiDocument } from './openapi.ts';
import { Readiness } from './readiness.ts';
import type { ServiceState } from './state.ts';
import { UploadSlots, continueIfExpected, slotLimits } from './upload-slots.ts';

export interface AppDeps {
  state: () => ServiceState;
  metrics: Metrics;
  log: Logger;
  version: string;
  /** [cachegate] max_uploads, shared with the S3 front door; one of its own when not given. */
  uploads?: UploadSlots;
}

type Env = { Bindings: HttpBindings };
export function createApp(deps: AppDeps): Hono<Env> {
  const { metrics, log } = deps;
  const app = new Hono<Env>();
  const readiness = new Readiness();
  const uploads = deps.uploads ?? new UploadSlots(() => slotLimits(deps.state().config.service.limits));

  /** An authorized PUT: takes an upload slot (waiting for one, or 503) before inviting and reading the body. */
  const upload = async (c: Context<Env>, req: PutRequest): Promise<Response> => {
    const release = await uploads.take(c.env.outgoing);
    try {
      continueIfExpected(c.env.incoming, c.env.outgoing);
      return await putObject(req);
    } finally {
      release();
    }
  };

  app.onError((err, c) => errorResponse(err, c, log));
  app.notFound((c) => errorResponse(new CacheGateError('not_found', 404, `no route for ${c.req.method} ${c.req.path}`), c, log));

  app.get('/healthz', (c) => {
    return c.json({ status: 'ok' });
  });

  app.get('/readyz', async (c) => {
    const state = deps.state();
    const { ready, backends } = await readiness.check(state, Math.min(state.config.service.backendTimeout, 5) * 1000);
    if (!ready) c.header('Retry-After', DEFAULT_RETRY_AFTER);
    return c.json({ status: ready ? 'ready' : 'unavailable', backends }, ready ? 200 : 503);
  });

  app.get('/metrics', async (c) => {
    return c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });

  app.get('/openapi.json', (c) => {
    return c.json(openApiDocument(deps.version));
  });

  // Usage by runner and project (admin token only): docs/retention.md.
  app.get('/v1/admin/usage', async (c) => c.json(await adminUsage(header(c, 'authorization'), deps.state(), metrics, c.env.incoming.socket.remoteAddress)));

  // Proxy mode: the service streams the bytes itself.
  app.on(['GET', 'HEAD', 'PUT'], '/v1/cache/:projectId/*', async (c) => {
    const state = deps.state();
    if (!state.config.service.proxy) throw new CacheGateError('not_found', 404, 'proxy mode is turned off ([cachegate] proxy = false)');
    const principal = authenticate(header(c, 'authorization'), state, c.env.incoming.socket.remoteAddress);
    const method = c.req.method;
    if (method === 'PUT' && principal.readOnly) throw new CacheGateError('forbidden', 403, 'this token is read-only: it cannot upload');
    const projectId = c.req.param('projectId');
    if (!/^[0-9]{1,19}$/.test(projectId)) throw new CacheGateError('invalid_request', 400, 'projectId: must be a GitLab project id (digits)');
    const url = new URL(c.req.url);
    const rawKey = proxyKey(url.pathname, projectId);
    noteRequest({ project: projectId, key: rawKey });
    const hashKeys = hashKeysParam(url.searchParams);
    const { profile } = principal;
    const resolved = resolveKey(rawKey, { path: profile.cache.path, shared: profile.cache.shared, shortToken: profile.shortToken, projectId }, hashKeys);
    if (resolved.changed) log.warn({}, `cache key ${goQuote(resolved.raw)} sanitized to ${goQuote(resolved.human)}`);
    const adapter = state.adapterFor(profile);
    const r = { adapter, objectName: resolved.objectName, metrics, timeoutMs: state.config.service.backendTimeout * 1000 };
    if (method === 'HEAD') return headObject(r);
    if (method === 'GET') return getObject(r, header(c, 'range'));
    return upload(c, { ...r, incoming: c.env.incoming, metadata: resolved.metadata, maxSize: profile.cache.maxUploadedArchiveSize, where: 'proxy' });
  });

  // The local backend's presigned URLs: the signature is the authorization.
  app.on(['GET', 'HEAD', 'PUT'], '/v1/blob/*', async (c) => {
    const state = deps.state();
    const adapter = state.blobAdapter;
    if (!adapter) throw new CacheGateError('not_found', 404, 'no profile uses the embedded local backend');
    const url = new URL(c.req.url);
    const { objectName, maxSize, signedHeaders } = adapter.verifySigned({ method: c.req.method, path: url.pathname, query: url.searchParams, header: (n) => header(c, n) });
    const r = { adapter, objectName, metrics, timeoutMs: state.config.service.backendTimeout * 1000 };
    if (c.req.method === 'HEAD') return headObject(r);
    if (c.req.method === 'GET') return getObject(r, header(c, 'range'));
    // Only signed metadata is stored: a client cannot add x-amz-meta-* headers of its own.
    const metadata: Record<string, string> = {};
    for (const name of signedHeaders) {
      const v = header(c, name);
      if (name.startsWith(META_HEADER_PREFIX) && v !== undefined) metadata[name.slice(META_HEADER_PREFIX.length)] = v;
    }
    return upload(c, { ...r, incoming: c.env.incoming, metadata, maxSize, where: 'blob' });
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

/** ?hashKeys= of a proxy URL: absent, or once as true/1 or false/0; anything else is refused rather than guessed. */
function hashKeysParam(query: URLSearchParams): boolean {
  const all = query.getAll('hashKeys');
  if (all.length === 0) return false;
  const v = all[0];
  if (all.length > 1) throw new CacheGateError('invalid_request', 400, 'hashKeys: give it once');
  if (!['true', '1', 'false', '0'].includes(v)) throw new CacheGateError('invalid_request', 400, `hashKeys: ${JSON.stringify(v.slice(0, 20))} is not true, false, 1 or 0`);
  return v === 'true' || v === '1';
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

function errorResponse(err: unknown, c: Context<Env>, log: Logger): Response {
  const reqId = String(c.env?.outgoing?.getHeader('X-Request-Id') ?? '');
  const { status, headers, body } = errorAnswer(err, c.req.method, reqId, log);
  return new Response(body, { status, headers });
}
