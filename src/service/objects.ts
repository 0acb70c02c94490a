/**
 * Streaming GET / HEAD / PUT of one object through the service: used by proxy mode
 * (/v1/cache/<project>/<key>) and by the local backend's signed URLs (/v1/blob/<object>).
 * Bodies are streamed both ways; nothing is buffered whole.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { ByteRange, CacheAdapter, ObjectInfo } from '../adapter.ts';
import { CacheGateError, backendUnavailable } from '../errors.ts';
import type { Metrics } from './metrics.ts';
import { metadataHeaderValue } from '../keys/header-value.ts';

export const META_HEADER_PREFIX = 'x-amz-meta-';

export interface ObjectRequest {
  adapter: CacheAdapter;
  objectName: string;
  metrics: Metrics;
  /** Deadline for a backend call that is not a stream of the body ([cachegate] backend_timeout), in ms. */
  timeoutMs: number;
}

/**
 * Runs a backend call; anything that is not already a CacheGateError means the backend failed.
 * With `timeoutMs` > 0 the request stops waiting after that long and answers 503 (the adapters bound
 * their own sockets too; this is the bound the caller sees, whatever the backend does).
 */
export function backendCall<T>(adapter: CacheAdapter, fn: () => Promise<T>, timeoutMs = 0): Promise<T> {
  let call: Promise<T>;
  try {
    call = fn();
  } catch (err) {
    return Promise.reject(backendError(adapter, err));
  }
  if (timeoutMs <= 0) return call.catch((err: unknown) => Promise.reject(backendError(adapter, err)));
  // One promise and one timer per call (Promise.race with a deadline promise cost twice as much on
  // the presign path); a late result or failure after the deadline is dropped.
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(backendUnavailable(`the ${adapter.kind} backend did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
    call.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(backendError(adapter, err));
      },
    );
  });
}

/** A backend call's failure as the service answers it: a CacheGateError as is, anything else 503. */
function backendError(adapter: CacheAdapter, err: unknown): CacheGateError {
  return err instanceof CacheGateError ? err : backendUnavailable(`the ${adapter.kind} backend failed: ${(err as Error)?.name ?? 'error'}`, err);
}

/**
 * A cache object leaves as inert bytes, whatever Content-Type its uploader sent: served from the
 * service's own origin, an archive uploaded as text/html would otherwise be a page a browser renders
 * (and, without nosniff, one it may guess into HTML). The listener adds nosniff to every response.
 */
export const OBJECT_CONTENT_TYPE = 'application/octet-stream';

function infoHeaders(info: ObjectInfo): Headers {
  const h = new Headers();
  h.set('Content-Type', OBJECT_CONTENT_TYPE);
  h.set('Content-Disposition', 'attachment');
  h.set('Last-Modified', info.lastModified.toUTCString());
  h.set('Accept-Ranges', 'bytes');
  if (info.etag) h.set('ETag', info.etag);
  for (const [k, v] of Object.entries(info.metadata)) h.set(META_HEADER_PREFIX + k, metadataHeaderValue(v));
  return h;
}

export async function headObject(r: ObjectRequest): Promise<Response> {
  const info = await backendCall(r.adapter, () => r.adapter.head(r.objectName), r.timeoutMs);
  r.metrics.cacheLookups.inc({ method: 'HEAD', result: info ? 'hit' : 'miss' });
  if (!info) r.metrics.lookups.record(r.objectName, false);
  if (!info) return new Response(null, { status: 404 });
  const h = infoHeaders(info);
  h.set('Content-Length', String(info.size));
  return new Response(null, { status: 200, headers: h });
}

/** Parses a single `bytes=` range; undefined = serve the whole object (absent, multi-range or malformed). */
export function parseRange(header: string | undefined): ByteRange | { suffix: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  const end = m[2] === '' ? undefined : Number(m[2]);
  if (end !== undefined && end < start) return undefined;
  return { start, end };
}

export async function getObject(r: ObjectRequest, rangeHeader: string | undefined): Promise<Response> {
  const o = await openObject(r, rangeHeader);
  return new Response(Readable.toWeb(o.body) as ReadableStream, { status: o.status, headers: o.headers });
}

/**
 * The object's answer with its bytes as the backend's Node stream: for the S3 front door, which
 * writes to a Node response. Going through a web Response there (Node → web → Node stream) cost the
 * door more CPU per 1 MiB GET than Ceph spent serving it (bench/s3api.ts cpuMsPerRequest).
 */
export async function openObject(r: ObjectRequest, rangeHeader: string | undefined): Promise<{ status: number; headers: Headers; body: Readable }> {
  let range = parseRange(rangeHeader);
  if (range && 'suffix' in range) {
    const info = await backendCall(r.adapter, () => r.adapter.head(r.objectName), r.timeoutMs);
    if (!info) return miss(r);
    range = range.suffix === 0 ? undefined : { start: Math.max(0, info.size - range.suffix) };
    if (range === undefined) {
      throw new CacheGateError('range_not_satisfiable', 416, 'empty suffix range', { headers: { 'Content-Range': `bytes */${info.size}` } });
    }
  }
  const got = await backendCall(r.adapter, () => r.adapter.get(r.objectName, range as ByteRange | undefined), r.timeoutMs);
  if (!got) return miss(r);
  r.metrics.cacheLookups.inc({ method: 'GET', result: 'hit' });
  // One hit per download: not per ranged part, nor for a parallel download's `bytes=0-0` probe.
  if (!got.range || (got.range.start === 0 && got.range.end > 0)) r.metrics.lookups.record(r.objectName, true);
  const h = infoHeaders(got.info);
  let status = 200;
  let length = got.info.size;
  if (got.range) {
    status = 206;
    length = got.range.end - got.range.start + 1;
    h.set('Content-Range', `bytes ${got.range.start}-${got.range.end}/${got.info.size}`);
  }
  h.set('Content-Length', String(length));
  let sent = 0;
  got.body.on('data', (chunk: Buffer) => {
    sent += chunk.length;
  });
  got.body.on('close', () => r.metrics.bytes.inc({ direction: 'out' }, sent));
  return { status, headers: h, body: got.body };
}

function miss(r: ObjectRequest): never {
  r.metrics.cacheLookups.inc({ method: 'GET', result: 'miss' });
  r.metrics.lookups.record(r.objectName, false);
  throw new CacheGateError('not_found', 404, 'no cache archive under this key');
}

export interface PutRequest extends ObjectRequest {
  incoming: IncomingMessage;
  metadata: Record<string, string>;
  maxSize: number;
  where: 'proxy' | 'blob';
}

export async function putObject(r: PutRequest): Promise<Response> {
  const te = r.incoming.headers['transfer-encoding'];
  const cl = r.incoming.headers['content-length'];
  let contentLength: number | undefined;
  if (te === undefined && cl !== undefined) {
    if (!/^[0-9]{1,16}$/.test(cl)) throw new CacheGateError('invalid_request', 400, 'Content-Length is not a number');
    contentLength = Number(cl);
  }
  const contentType = r.incoming.headers['content-type'];
  try {
    const info = await backendCall(r.adapter, () =>
      r.adapter.put(r.objectName, { body: r.incoming, contentLength, metadata: r.metadata, maxSize: r.maxSize, contentType }),
    );
    r.metrics.bytes.inc({ direction: 'in' }, info.size);
    const h = new Headers();
    if (info.etag) h.set('ETag', info.etag);
    return new Response(null, { status: 200, headers: h });
  } catch (err) {
    if (err instanceof CacheGateError && err.status === 413) r.metrics.sizeRefusals.inc({ where: r.where });
    // The client went away mid-upload: its fault, whatever the backend made of the cut stream.
    // A full disk (507) is never the client's doing, though the store's failed pipeline destroyed the
    // request stream before its end, which looks the same here.
    const serverSide = !(err instanceof CacheGateError) || (err.status >= 500 && err.code !== 'insufficient_storage');
    if (serverSide && (r.incoming.readableAborted || (r.incoming.destroyed && !r.incoming.complete))) {
      throw new CacheGateError('invalid_request', 400, 'the upload was cut off by the client before its end', { cause: err });
    }
    throw err;
  }
}
