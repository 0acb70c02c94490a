/**
 * GetObject, HeadObject, PutObject and DeleteObject on the mapped profile's adapter. Reads reuse the
 * service's streaming GET/HEAD (src/service/objects.ts: Range, Last-Modified, ETag, metadata); a PUT
 * decodes and verifies its body on the way (aws-chunked.ts, checksums.ts) and streams it into the
 * adapter's put, which enforces MaxUploadedArchiveSize and stores nothing on any failure.
 */
import type { IncomingMessage } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import type { CacheAdapter, ObjectInfo } from '../adapter.ts';
import { CacheGateError } from '../errors.ts';
import { backendCall, headObject, openObject } from '../service/objects.ts';
import type { Metrics } from '../service/metrics.ts';
import { AwsChunkedDecoder } from './aws-chunked.ts';
import { BodyVerifier, expectationsOf } from './checksums.ts';
import { S3Error } from './errors.ts';
import { signedMetadata } from './metadata.ts';
import { checkPreconditions } from './preconditions.ts';
import type { VerifiedSignature } from './sigv4-verify.ts';

export interface ObjectContext {
  adapter: CacheAdapter;
  objectName: string;
  metrics: Metrics;
  timeoutMs: number;
}

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body?: Readable | ReadableStream | string;
}

function answerOf(r: { status: number; headers: Headers; body: Readable | ReadableStream | null }): Answer {
  const headers: Record<string, string> = {};
  r.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return { status: r.status, headers, ...(r.body ? { body: r.body } : {}) };
}

export async function headOp(c: ObjectContext, req: IncomingMessage): Promise<Answer> {
  const r = await headObject(c);
  if (r.status === 404) throw new S3Error('NoSuchKey', 404, 'The specified key does not exist.');
  return conditional(req, answerOf(r));
}

export async function getOp(c: ObjectContext, req: IncomingMessage): Promise<Answer> {
  return conditional(req, answerOf(await openObject(c, req.headers.range)));
}

/** Releases an answer's unsent body (the backend's stream). */
export function dropBody(a: Answer): void {
  if (a.body !== undefined && typeof a.body !== 'string') void (a.body instanceof ReadableStream ? a.body.cancel().catch(() => undefined) : a.body.destroy());
}

/** The answer, or 304 without its body, or PreconditionFailed (preconditions.ts). */
function conditional(req: IncomingMessage, a: Answer): Answer {
  let verdict: 'ok' | 'not-modified';
  try {
    verdict = checkPreconditions(req.headers, a.headers.etag, a.headers['last-modified']);
  } catch (err) {
    dropBody(a);
    throw err;
  }
  if (verdict === 'ok') return a;
  dropBody(a);
  const kept: Record<string, string> = {};
  for (const k of ['etag', 'last-modified']) if (a.headers[k] !== undefined) kept[k] = a.headers[k];
  return { status: 304, headers: kept };
}

export async function deleteOp(c: ObjectContext): Promise<Answer> {
  const { adapter } = c;
  if (!adapter.delete) throw new S3Error('NotImplemented', 501, `DeleteObject is not supported by the ${adapter.kind} backend`);
  await backendCall(adapter, () => (adapter.delete as (n: string) => Promise<boolean>)(c.objectName), c.timeoutMs);
  return { status: 204, headers: {} };
}

/** The length of the object's bytes the client declares, and whether the body is aws-chunked. */
function declaredBody(req: IncomingMessage, payloadHash: string): { length: number | undefined; chunked: boolean } {
  const chunked = payloadHash.startsWith('STREAMING-');
  const raw = chunked ? req.headers['x-amz-decoded-content-length'] : req.headers['transfer-encoding'] === undefined ? req.headers['content-length'] : undefined;
  if (raw === undefined || Array.isArray(raw)) {
    if (chunked || req.headers['transfer-encoding'] !== undefined) return { length: undefined, chunked };
    throw new S3Error('MissingContentLength', 411, 'You must provide the Content-Length HTTP header.');
  }
  // Past 2^53 a Number rounds: refused here alike on every backend (the S3 adapter refused it as a 400 of its own).
  if (!/^[0-9]{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw new S3Error('InvalidArgument', 400, `${chunked ? 'x-amz-decoded-content-length' : 'Content-Length'} is not a number`);
  return { length: Number(raw), chunked };
}

const STREAMING = new Set(['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'STREAMING-UNSIGNED-PAYLOAD-TRAILER']);

/**
 * The request body as the object's bytes: aws-chunked framing removed (each chunk signature checked),
 * checksums and length verified before its last bytes are let through.
 */
export function objectBody(req: IncomingMessage, sig: VerifiedSignature): { body: Readable; length: number | undefined } {
  const { payloadHash } = sig;
  if (payloadHash.startsWith('STREAMING-') && !STREAMING.has(payloadHash)) {
    throw new S3Error('InvalidArgument', 400, `x-amz-content-sha256 "${payloadHash}" is not supported (use UNSIGNED-PAYLOAD, a hex SHA-256, or ${[...STREAMING].join(', ')})`);
  }
  if (!payloadHash.startsWith('STREAMING-') && payloadHash !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payloadHash)) {
    throw new S3Error('InvalidArgument', 400, 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or the hex SHA-256 of the body');
  }
  const { length, chunked } = declaredBody(req, payloadHash);
  const one = (n: string): string | undefined => {
    const v = req.headers[n];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const expect = expectationsOf(one, payloadHash, length);
  if (!chunked) {
    const verifier = new BodyVerifier(expect);
    pipeline(req, verifier, () => undefined);
    return { body: verifier, length };
  }
  const signed = payloadHash.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
  const decoder = new AwsChunkedDecoder(signed ? sig.seed : undefined, payloadHash.endsWith('-TRAILER'));
  const verifier = new BodyVerifier(expect, () => decoder.trailers);
  pipeline(req, decoder, verifier, () => undefined);
  return { body: verifier, length };
}

export interface PutContext extends ObjectContext {
  req: IncomingMessage;
  sig: VerifiedSignature;
  maxSize: number;
}

export async function putOp(c: PutContext): Promise<Answer> {
  const { body, length } = objectBody(c.req, c.sig);
  const metadata = signedMetadata(c.req, c.sig.signedHeaders);
  const contentType = c.req.headers['content-type'];
  let info: ObjectInfo;
  try {
    info = await backendCall(c.adapter, () => c.adapter.put(c.objectName, { body, contentLength: length, metadata, maxSize: c.maxSize, ...(contentType ? { contentType } : {}) }));
  } catch (err) {
    if (err instanceof CacheGateError && err.status === 413) c.metrics.sizeRefusals.inc({ where: 's3api' });
    throw err;
  }
  c.metrics.bytes.inc({ direction: 'in' }, info.size);
  const etag = info.etag ?? (await backendCall(c.adapter, () => c.adapter.head(c.objectName), c.timeoutMs))?.etag;
  return { status: 200, headers: etag ? { ETag: etag } : {} };
}
