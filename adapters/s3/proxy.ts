/**
 * Proxy mode: the service streams bytes to and from S3 itself.
 *
 * Memory bound of put(): a body of stated length ≤ 5 GiB is streamed straight into one PutObject (no
 * buffering; a presigned PUT over node:http when the presigner is given, direct-put.ts); a body of unknown length goes through @aws-sdk/lib-storage Upload, which holds at most
 * (queueSize + 1) × partSize = 3 × 8 MiB = 24 MiB per upload. Bytes are counted on the way: past
 * `maxSize` (or past/short of the stated length) the stream fails, the request or the multipart upload
 * is aborted, and nothing is stored.
 *
 * Time bounds (adapters/timeouts.ts): HEAD, and GET until the answer's headers, within
 * TIMEOUTS.callMs; a PUT is aborted when nothing moves for TIMEOUTS.idleMs, and must be confirmed
 * within TIMEOUTS.callMs after the last byte (plus the multipart parts still in flight).
 */
import { Transform } from 'node:stream';
import type { TransformCallback, Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ByteRange, GetResult, ObjectInfo, PutInput } from '../../src/adapter.ts';
import type { S3Settings } from '../../src/config/types.ts';
import { CacheGateError, badRequest, tooLarge } from '../../src/errors.ts';
import { httpStatusOf, isNotFound, toCacheGateError } from './errors.ts';
import { TIMEOUTS, UploadWatch, bounded } from '../timeouts.ts';
import { directGet, type GetAnswer } from './direct-get.ts';
import { directPut } from './direct-put.ts';
import type { S3Presigner } from './presigner.ts';

export const PART_SIZE = 8 * 1024 * 1024;
export const QUEUE_SIZE = 2;
const SINGLE_PUT_LIMIT = 5 * 1024 * 1024 * 1024;

export interface ProxyDeps {
  s3: S3Settings;
  client: () => Promise<S3Client>;
  secrets: readonly string[];
  /**
   * Throws a 502 when the bucket does not exist. A HEAD's 404 has no body to tell a missing object
   * from a missing bucket, and answering a missing bucket as a miss hides the fault from everyone.
   */
  confirmBucket: () => Promise<void>;
  /** When given, GetObject and a PutObject of known length go as presigned requests over node:http rather than through the SDK (direct-get.ts, direct-put.ts say why). */
  presigner?: S3Presigner;
}

function sseParams(s3: S3Settings): { ServerSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse'; SSEKMSKeyId?: string } {
  if (s3.serverSideEncryption === '') return {};
  if (s3.serverSideEncryption === 'AES256' || s3.serverSideEncryptionKeyId === '') return { ServerSideEncryption: s3.serverSideEncryption };
  return { ServerSideEncryption: s3.serverSideEncryption, SSEKMSKeyId: s3.serverSideEncryptionKeyId };
}

interface HeadLike {
  ContentLength?: number;
  LastModified?: Date;
  ETag?: string;
  ContentType?: string;
  Metadata?: Record<string, string>;
}

function info(out: HeadLike, size: number): ObjectInfo {
  return {
    size,
    lastModified: out.LastModified ?? new Date(0),
    ...(out.ETag !== undefined ? { etag: out.ETag } : {}),
    ...(out.ContentType !== undefined ? { contentType: out.ContentType } : {}),
    metadata: out.Metadata ?? {},
  };
}

export async function headObject(d: ProxyDeps, key: string): Promise<ObjectInfo | null> {
  const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    const client = await d.client();
    const out = await bounded('S3 HeadObject', TIMEOUTS.callMs, (abortSignal) =>
      client.send(new HeadObjectCommand({ Bucket: d.s3.bucketName, Key: key }), { abortSignal }));
    return info(out, out.ContentLength ?? 0);
  } catch (err) {
    if (isNotFound(err)) {
      await d.confirmBucket();
      return null;
    }
    throw toCacheGateError(err, 'HeadObject', d.secrets, d.s3.bucketName);
  }
}

export async function getObject(d: ProxyDeps, key: string, range?: ByteRange): Promise<GetResult | null> {
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  let rangeHeader: string | undefined;
  if (range !== undefined) {
    const { start, end } = range;
    if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
      throw badRequest('invalid byte range');
    }
    rangeHeader = `bytes=${start}-${end ?? ''}`;
  }
  try {
    if (d.presigner !== undefined) return directResult(await bounded('S3 GetObject', TIMEOUTS.callMs, (signal) => directGet(d.presigner as S3Presigner, key, rangeHeader, signal)));
    const client = await d.client();
    const out = await bounded('S3 GetObject', TIMEOUTS.callMs, (abortSignal) =>
      client.send(new GetObjectCommand({ Bucket: d.s3.bucketName, Key: key, ...(rangeHeader !== undefined ? { Range: rangeHeader } : {}) }), { abortSignal }));
    const body = out.Body as Readable | undefined;
    if (body === undefined) throw new Error('GetObject answered without a body');
    return getResult(out, out.ContentRange, body);
  } catch (err) {
    if (isNotFound(err)) return null;
    if (httpStatusOf(err) === 416) throw new CacheGateError('range_not_satisfiable', 416, 'requested range not satisfiable');
    throw toCacheGateError(err, 'GetObject', d.secrets, d.s3.bucketName);
  }
}

/** A GetResult from S3's answer headers, as the SDK's GetObjectCommand output reads them. */
function directResult(res: GetAnswer): GetResult {
  const h = res.headers;
  const metadata: Record<string, string> = {};
  for (const name in h) {
    const v = h[name];
    if (name.startsWith('x-amz-meta-') && typeof v === 'string') metadata[name.slice('x-amz-meta-'.length)] = v;
  }
  const one = (name: string): string | undefined => {
    const v = h[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const [modified, length, etag, type] = [one('last-modified'), one('content-length'), one('etag'), one('content-type')];
  const lastModified = modified !== undefined ? new Date(modified) : undefined;
  const out: HeadLike = {
    ContentLength: length !== undefined ? Number(length) : undefined,
    ...(lastModified !== undefined && !Number.isNaN(lastModified.getTime()) ? { LastModified: lastModified } : {}),
    ...(etag !== undefined ? { ETag: etag } : {}),
    ...(type !== undefined ? { ContentType: type } : {}),
    Metadata: metadata,
  };
  return getResult(out, one('content-range'), res.body);
}

/** A GET's answer: a 206's Content-Range gives the object's total size and the range served. */
function getResult(out: HeadLike, contentRange: string | undefined, body: Readable): GetResult {
  const m = contentRange === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange);
  if (m !== null) {
    const total = m[3] === '*' ? Number(m[2]) + 1 : Number(m[3]);
    return { info: info(out, total), body, range: { start: Number(m[1]), end: Number(m[2]) } };
  }
  return { info: info(out, out.ContentLength ?? 0), body };
}

/** Counts bytes; fails past `max` (0 = unlimited) or when the total differs from `expected`. */
export class ByteCounter extends Transform {
  bytes = 0;
  readonly max: number;
  readonly expected: number | undefined;
  /** Called for every chunk that passes (progress for an UploadWatch). */
  onChunk: (() => void) | undefined;
  constructor(max: number, expected: number | undefined) {
    super();
    this.max = max;
    this.expected = expected;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.onChunk?.();
    if (this.max > 0 && this.bytes > this.max) return cb(tooLarge(`>${this.max}`, this.max));
    if (this.expected !== undefined && this.bytes > this.expected) {
      return cb(new CacheGateError('length_mismatch', 400, `body is longer than the stated Content-Length (${this.expected})`));
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.expected !== undefined && this.bytes !== this.expected) {
      return cb(new CacheGateError('length_mismatch', 400, `body has ${this.bytes} bytes, Content-Length said ${this.expected}`));
    }
    cb();
  }
}

export async function putObject(d: ProxyDeps, key: string, input: PutInput): Promise<ObjectInfo> {
  const { contentLength, maxSize } = input;
  if (contentLength !== undefined) {
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) throw badRequest('contentLength must be a non-negative integer');
    if (maxSize > 0 && contentLength > maxSize) {
      input.body.resume(); // drain, so the caller's socket is not left hanging
      throw tooLarge(contentLength, maxSize);
    }
  }
  const counter = new ByteCounter(maxSize, contentLength);
  // A failing body (too long, too short, client gone) aborts the request to S3 at once: otherwise the
  // HTTP request would wait for bytes that never come until the server times out. So does a backend
  // that stops taking bytes or does not confirm (the watch).
  const abort = new AbortController();
  const single = contentLength !== undefined && contentLength <= SINGLE_PUT_LIMIT;
  const watch = new UploadWatch('S3 PutObject');
  let failure: unknown;
  // A single PutObject streams what it reads straight to the socket; multipart holds parts until S3 confirms them.
  let confirmed = 0;
  counter.onChunk = () => watch.progress();
  counter.on('end', () => watch.ended(single ? 0 : counter.bytes - confirmed));
  watch.signal.addEventListener('abort', () => {
    failure ??= watch.failure;
    abort.abort();
  });
  // The client's body failing (disconnect, aborted upload) is not the backend's fault: 400, not 503.
  input.body.on('error', (err) => counter.destroy(err instanceof CacheGateError ? err : badRequest(`upload body failed: ${err.message}`)));
  counter.on('error', (err) => {
    failure ??= err;
    abort.abort();
  });
  input.body.pipe(counter);
  const common = {
    Bucket: d.s3.bucketName,
    Key: key,
    Metadata: input.metadata,
    ContentType: input.contentType ?? 'application/octet-stream',
    ...sseParams(d.s3),
  };
  try {
    let etag: string | undefined;
    if (single && d.presigner !== undefined) {
      etag = await directPut(d.presigner, key, { body: counter, contentLength: contentLength as number, metadata: input.metadata, contentType: common.ContentType }, abort.signal);
    } else if (single) {
      const { PutObjectCommand } = await import('@aws-sdk/client-s3');
      const client = await d.client();
      const out = await client.send(new PutObjectCommand({ ...common, Body: counter, ContentLength: contentLength }), { abortSignal: abort.signal });
      etag = out.ETag;
    } else {
      const client = await d.client();
      const { Upload } = await import('@aws-sdk/lib-storage');
      const upload = new Upload({ client, params: { ...common, Body: counter }, partSize: PART_SIZE, queueSize: QUEUE_SIZE, leavePartsOnError: false });
      upload.on('httpUploadProgress', (p) => {
        confirmed = Math.max(confirmed, p.loaded ?? 0);
        watch.progress();
      });
      // No abort() on a body failure here: Upload sees the read error itself and awaits
      // AbortMultipartUpload before done() rejects (abort() would reject first and leave it running).
      // A backend that hangs is another matter: nothing would ever settle.
      watch.signal.addEventListener('abort', () => void upload.abort().catch(() => undefined));
      const out = await upload.done();
      etag = out.ETag;
    }
    if (failure !== undefined) throw failure;
    watch.done();
    return { size: counter.bytes, lastModified: new Date(), ...(etag !== undefined ? { etag } : {}), contentType: common.ContentType, metadata: { ...input.metadata } };
  } catch (err) {
    watch.done();
    input.body.unpipe(counter);
    input.body.resume();
    if (failure instanceof CacheGateError) throw failure;
    if (err instanceof CacheGateError) throw err;
    if (failure !== undefined) throw toCacheGateError(failure, 'PutObject', d.secrets, d.s3.bucketName);
    throw toCacheGateError(err, 'PutObject', d.secrets, d.s3.bucketName);
  }
}
