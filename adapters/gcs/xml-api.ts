/**
 * Proxy-mode transfers against the GCS XML API, authenticated by the adapter's own signed URLs.
 * Signing our own URLs (instead of OAuth access tokens through the JSON API) means proxy mode needs
 * exactly the credentials presigning needs, works with every signing source (key, signBlob) and
 * every endpoint that accepts signed URLs, and needs no token exchange.
 *
 * Time bounds (adapters/timeouts.ts): a request's answer (its headers) within TIMEOUTS.callMs; a
 * socket where nothing moves for TIMEOUTS.idleMs fails, during a body too; an upload must be
 * confirmed within TIMEOUTS.callMs after its last byte.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { ObjectInfo } from '../../src/adapter.ts';
import { CacheGateError, backendUnavailable, tooLarge } from '../../src/errors.ts';
import { TIMEOUTS, UploadWatch, bounded } from '../timeouts.ts';
import { misconfigured } from '../backend-fault.ts';

/** Fails the socket (and the response body) when nothing moves on it for TIMEOUTS.idleMs. */
function idleTimeout(req: http.ClientRequest, what: string): void {
  req.setTimeout(TIMEOUTS.idleMs, () => req.destroy(backendUnavailable(`gcs: ${what}: nothing received for ${TIMEOUTS.idleMs / 1000} s`)));
}

/** A request without a body; resolves with the answer once its headers are in (within TIMEOUTS.callMs). */
export function send(url: string, method: string, headers: OutgoingHttpHeaders): Promise<IncomingMessage> {
  const mod = url.startsWith('https:') ? https : http;
  return bounded(`gcs: ${method}`, TIMEOUTS.callMs, (signal) =>
    new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, signal }, resolve);
      idleTimeout(req, method);
      req.on('error', (err) => reject(err instanceof CacheGateError ? err : backendUnavailable(`gcs: ${method} failed: ${err.message}`, err)));
      req.end();
    }),
  );
}

export interface UploadLimits {
  /** 0 = unlimited. */
  maxSize: number;
  declaredLength?: number;
}

/** Streams `body` as the request body, refusing (413) past maxSize and on a length mismatch. */
export function sendBody(url: string, headers: OutgoingHttpHeaders, body: Readable, limits: UploadLimits): Promise<IncomingMessage> {
  const mod = url.startsWith('https:') ? https : http;
  const { maxSize, declaredLength } = limits;
  const watch = new UploadWatch('gcs: PUT');
  return new Promise<IncomingMessage>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      const e = watch.failure ?? err;
      reject(e instanceof CacheGateError ? e : backendUnavailable(`gcs: PUT failed: ${(e as Error).message}`, e));
    };
    const req = mod.request(url, { method: 'PUT', headers, signal: watch.signal }, (res) => {
      if (settled) {
        res.resume();
        return;
      }
      settled = true;
      resolve(res);
    });
    idleTimeout(req, 'PUT');
    req.on('error', fail);
    let seen = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        seen += chunk.length;
        watch.progress();
        if (maxSize > 0 && seen > maxSize) return cb(tooLarge(`more than ${maxSize}`, maxSize));
        if (declaredLength !== undefined && seen > declaredLength) return cb(lengthMismatch(declaredLength, seen));
        cb(null, chunk);
      },
      flush(cb) {
        if (declaredLength !== undefined && seen !== declaredLength) return cb(lengthMismatch(declaredLength, seen));
        cb();
      },
    });
    counter.on('end', () => watch.ended(0)); // streamed straight to the socket
    pipeline(body, counter, req).catch((err: unknown) => {
      req.destroy();
      fail(err);
    });
  }).finally(() => watch.done());
}

const lengthMismatch = (declared: number, seen: number): CacheGateError =>
  new CacheGateError('length_mismatch', 400, `body length (${seen}${seen > declared ? '+' : ''}) does not match Content-Length (${declared})`);

export async function readText(res: IncomingMessage, limit = 64 * 1024): Promise<string> {
  let out = '';
  for await (const chunk of res) {
    if (out.length < limit) out += String(chunk);
  }
  return out;
}

export function xmlCode(body: string): string {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? '';
}

export function infoFromHeaders(res: IncomingMessage): ObjectInfo {
  const h = res.headers;
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith('x-goog-meta-') && value !== undefined) metadata[name.slice(12)] = Array.isArray(value) ? value.join(',') : value;
  }
  const total = /\/(\d+)$/.exec(String(h['content-range'] ?? ''))?.[1];
  const size = Number(total ?? h['x-goog-stored-content-length'] ?? h['content-length'] ?? 0);
  const info: ObjectInfo = {
    size,
    lastModified: h['last-modified'] ? new Date(h['last-modified']) : new Date(0),
    metadata,
  };
  if (h.etag) info.etag = h.etag;
  if (h['content-type']) info.contentType = h['content-type'];
  return info;
}

/** A non-2xx answer that is not a plain miss, as a CacheGateError (classified as in backend-fault.ts). */
export async function failure(res: IncomingMessage, what: string, bucket: string): Promise<CacheGateError> {
  return classify(res.statusCode ?? 0, xmlCode(await readText(res)), what, bucket);
}

export function classify(status: number, code: string, what: string, bucket: string): CacheGateError {
  const detail = `${status}${code ? ' ' + code : ''}`;
  if (code === 'NoSuchBucket') return misconfigured(`gcs: ${what} refused (${detail})`, `BucketName (bucket "${bucket}" does not exist)`);
  if (status === 401 || status === 403) {
    return misconfigured(`gcs: ${what} refused (${detail})`, `that the service account (CredentialsFile or AccessID/PrivateKey) may use bucket ${bucket} and that the host clock is right`);
  }
  if (status === 416) return new CacheGateError('range_not_satisfiable', 416, 'requested range not satisfiable');
  if (status >= 500 || status === 429) return backendUnavailable(`gcs: ${what} failed (${detail})`);
  return new CacheGateError('backend_error', 502, `gcs: ${what} failed (${detail})`);
}
