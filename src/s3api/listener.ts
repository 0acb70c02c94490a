/**
 * The S3 front door's request listener: request id, signature, rate limit, confinement, then the
 * operation; every refusal leaves as S3 XML with the code S3 clients act on, never a stack trace.
 * Counted in /metrics (route "s3api", and by S3 operation and outcome) and written to the access log
 * like every other request; the query string (which carries presigned signatures) is never logged.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { accessLogger, type Logger } from '../log.ts';
import { requestContext } from '../request-context.ts';
import type { Metrics } from '../service/metrics.ts';
import { refuseLockedAddress } from '../service/auth.ts';
import type { ServiceState } from '../service/state.ts';
import { continueIfExpected, type UploadSlots } from '../service/upload-slots.ts';
import { checkListPrefix, checkObjectName, principals, type S3Principal } from './access-keys.ts';
import { addressOf } from './address.ts';
import { bucketLocation, headBucket, listBuckets, listObjects, listRequest } from './bucket-ops.ts';
import { readQuery } from './canonical.ts';
import { S3Error, accessDenied, errorXml, toS3Error } from './errors.ts';
import type { S3ApiMetrics } from './metrics.ts';
import { listUploads, stagingRoot } from './multipart.ts';
import { deleteOp, getOp, headOp, putOp, type Answer, type ObjectContext } from './object-ops.ts';
import { redirectOp, redirects } from './redirect.ts';
import { checkRequestShape } from './request-allowlist.ts';
import { verifySigV4, type VerifiedSignature } from './sigv4-verify.ts';

export interface S3ListenerDeps {
  state: () => ServiceState;
  metrics: Metrics;
  s3Metrics: S3ApiMetrics;
  log: Logger;
  /** [cachegate] max_uploads, shared with the service's own uploads: a PUT (object or part) or a Complete takes a slot. */
  uploads?: UploadSlots;
  /** Extra operations (multipart), tried before the plain object ones; undefined = not theirs. */
  extra?: (op: OperationInput, state: ServiceState) => Promise<Answer> | undefined;
}

export interface OperationInput {
  req: IncomingMessage;
  bucket: string;
  query: Map<string, string>;
  principal: S3Principal;
  sig: VerifiedSignature;
  object: ObjectContext;
  setOperation: (name: string) => void;
}

const SIGNATURE_CODES = new Set(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'RequestTimeTooSkewed', 'AuthorizationQueryParametersError']);
const BUCKET_CREATED = new Date();

export function createS3Listener(deps: S3ListenerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const access = accessLogger(deps.log);
  return (req, res) => {
    const start = performance.now();
    const reqId = randomUUID();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let operation = 'Unknown';
    res.setHeader('x-amz-request-id', reqId);
    res.setHeader('X-Request-Id', reqId);
    res.once('close', () => {
      const status = res.writableFinished ? res.statusCode : 499;
      const seconds = (performance.now() - start) / 1000;
      deps.metrics.httpRequests.inc({ route: 's3api', method: req.method ?? '', status: String(status) });
      deps.metrics.httpDuration.observe({ route: 's3api' }, seconds);
      access({ reqId, method: req.method ?? '', path, status, ms: Math.round(seconds * 1e4) / 10 });
    });
    requestContext.run({ reqId }, () => {
      handle(deps, req, res, path, q === -1 ? '' : url.slice(q + 1), (name) => (operation = name)).then(
        (answer) => {
          // A redirect_get answer (redirect.ts) is counted apart: its bytes never pass through the door.
          deps.s3Metrics.operations.inc({ operation, outcome: answer.status === 307 ? 'redirected' : 'ok' });
          send(req, res, answer);
        },
        (err: unknown) => {
          let e = toS3Error(err);
          if (!e) {
            deps.log.error({ err: err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 500) : String(err) }, 'internal error');
            e = new S3Error('InternalError', 500, `We encountered an internal error; see the service log for request id ${reqId}`);
          } else if (e.status >= 500) {
            deps.log.error({ code: e.s3Code }, e.message);
          }
          deps.s3Metrics.operations.inc({ operation, outcome: e.s3Code });
          if (SIGNATURE_CODES.has(e.s3Code)) deps.s3Metrics.signatureFailures.inc({ code: e.s3Code });
          sendError(req, res, e, path, reqId);
        },
      );
    });
  };
}

function send(req: IncomingMessage, res: ServerResponse, a: Answer): void {
  if (res.destroyed) {
    // The client went away while the answer was being prepared: drop it (pipeline() would throw
    // ERR_STREAM_UNABLE_TO_PIPE synchronously, out of any handler, and end the process).
    if (a.body !== undefined && typeof a.body !== 'string') void (a.body instanceof ReadableStream ? a.body.cancel().catch(() => undefined) : a.body.destroy());
    return;
  }
  if (typeof a.body === 'string') a.headers['Content-Length'] = String(Buffer.byteLength(a.body));
  else if (a.body === undefined && a.headers['content-length'] === undefined && req.method !== 'HEAD') a.headers['Content-Length'] = '0';
  res.writeHead(a.status, a.headers);
  if (req.method === 'HEAD' || a.body === undefined) {
    if (a.body !== undefined && typeof a.body !== 'string') void (a.body instanceof ReadableStream ? a.body.cancel().catch(() => undefined) : a.body.destroy());
    res.end();
    return;
  }
  if (typeof a.body === 'string') {
    res.end(a.body);
    return;
  }
  const src = a.body instanceof ReadableStream ? Readable.fromWeb(a.body as import('node:stream/web').ReadableStream) : a.body;
  pipeline(src, res, () => undefined);
}

function sendError(req: IncomingMessage, res: ServerResponse, e: S3Error, path: string, reqId: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = errorXml(e, reqId, path);
  const headers: Record<string, string> = { 'Content-Type': 'application/xml', ...(e.headers ?? {}) };
  // A refused upload may still be sending: close the connection rather than read it to discard it.
  if (!req.complete && req.method !== 'GET' && req.method !== 'HEAD') headers.Connection = 'close';
  if (req.method !== 'HEAD') headers['Content-Length'] = String(Buffer.byteLength(body));
  res.writeHead(e.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

async function handle(deps: S3ListenerDeps, req: IncomingMessage, res: ServerResponse, rawPath: string, rawQuery: string, setOperation: (n: string) => void): Promise<Answer> {
  const state = deps.state();
  const settings = state.config.service.s3Api;
  if (!settings) throw new S3Error('ServiceUnavailable', 503, 'the S3 front door was turned off by a configuration reload', { 'Retry-After': '60' });
  const read = readQuery(rawQuery);
  if (!read) throw new S3Error('InvalidArgument', 400, 'the query string is not valid percent-encoding');
  const query = new Map(read.pairs);
  const addr = addressOf(rawPath, req.headers.host, settings.bucket);
  const method = req.method ?? '';
  const keys = principals(state);
  // Failed authentications per client address ([cachegate] auth_failure_limit): a locked address is
  // refused before its signature is checked; a wrong signature or an unknown key counts (a clock
  // skew or an expired URL is not a guess).
  const from = req.socket.remoteAddress;
  if (req.headers.authorization !== undefined || query.has('X-Amz-Signature')) refuseLockedAddress(state, from);
  let sig: VerifiedSignature;
  try {
    sig = verifySigV4({ method, path: addr.path, query: read, header: (n) => req.headersDistinct[n] }, (ak) => keys.get(ak)?.secretKey);
  } catch (err) {
    if (err instanceof S3Error && (err.s3Code === 'SignatureDoesNotMatch' || err.s3Code === 'InvalidAccessKeyId')) state.authFailures.failed(from);
    throw err;
  }
  const principal = keys.get(sig.accessKey) as S3Principal;
  state.limiter.take(principal.label);

  if (addr.bucket === '') {
    setOperation('ListBuckets');
    if (method !== 'GET') throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
    return listBuckets(settings.bucket, BUCKET_CREATED);
  }
  if (addr.bucket !== settings.bucket) throw new S3Error('NoSuchBucket', 404, 'The specified bucket does not exist');
  // Sub-resources (?acl, ?tagging, ?versionId …), x-amz-* headers and preconditions the door does not implement.
  checkRequestShape(method, addr.key !== '', query, req.headers);
  const adapter = state.adapterFor(principal.profile);
  const timeoutMs = state.config.service.backendTimeout * 1000;

  if (addr.key === '') {
    if (method === 'HEAD') {
      setOperation('HeadBucket');
      return headBucket();
    }
    if (method === 'GET' && query.has('location')) {
      setOperation('GetBucketLocation');
      return bucketLocation();
    }
    if (method === 'GET' && query.has('uploads')) {
      setOperation('ListMultipartUploads');
      const prefix = query.get('prefix') ?? '';
      if (prefix !== '') checkListPrefix(principal, prefix);
      return listUploads(stagingRoot(state.config.service.dataDir), principal, settings.bucket, prefix);
    }
    if (method === 'GET') {
      const list = listRequest(query, { adapter, timeoutMs, bucket: settings.bucket });
      setOperation(list.version === 2 ? 'ListObjectsV2' : 'ListObjects');
      checkListPrefix(principal, list.prefix);
      return listObjects(list);
    }
    throw new S3Error('NotImplemented', 501, `${method} on the bucket is not supported by cachegate's S3 front door`);
  }

  checkObjectName(principal, addr.key);
  const object: ObjectContext = { adapter, objectName: addr.key, metrics: deps.metrics, timeoutMs };
  const writes = method !== 'GET' && method !== 'HEAD';
  if (writes && principal.readOnly) throw accessDenied('this access key is read-only');
  if ((method === 'PUT' || method === 'POST') && deps.uploads) res.once('close', await deps.uploads.take(res)); // waits in line, or 503 SlowDown
  continueIfExpected(req, res); // signed, in its namespace, allowed to write, a slot taken: now the body may come
  const extra = deps.extra?.({ req, bucket: settings.bucket, query, principal, sig, object, setOperation }, state);
  if (extra) return extra;
  const redirect = settings.redirectGet && (method === 'GET' || method === 'HEAD') && query.has('X-Amz-Signature') && redirects(adapter);
  switch (method) {
    case 'GET': {
      setOperation('GetObject');
      return (redirect ? await redirectOp(object, 'GET') : undefined) ?? getOp(object, req);
    }
    case 'HEAD':
      setOperation('HeadObject');
      return (redirect ? await redirectOp(object, 'HEAD') : undefined) ?? headOp(object, req);
    case 'PUT':
      setOperation('PutObject');
      return putOp({ ...object, req, sig, maxSize: principal.profile.cache.maxUploadedArchiveSize });
    case 'DELETE':
      setOperation('DeleteObject');
      return deleteOp(object);
    default:
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
  }
}
