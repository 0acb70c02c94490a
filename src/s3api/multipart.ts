/**
 * Multipart uploads (Create / UploadPart / Complete / Abort / ListParts). Parts are staged apart, on
 * local disk under the service's data directory (`<data_dir>/s3api-multipart/<upload id>/`), and
 * nothing reaches the backend before Complete, which streams the parts in order through the adapter's
 * put: the object appears whole or not at all, with the profile's size cap and SSE. Uploads left
 * unfinished are removed after `multipart_max_age`.
 *
 * Memory: a part streams to its file (the body checks of checksums.ts hold back one piece); Complete
 * reads one part file at a time. Disk: at most the size cap per upload (each part and the running
 * total are checked against MaxUploadedArchiveSize).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { META_HEADER_PREFIX, backendCall } from '../service/objects.ts';
import type { S3Principal } from './access-keys.ts';
import { S3Error, xmlEscape } from './errors.ts';
import type { OperationInput } from './listener.ts';
import { objectBody, type Answer } from './object-ops.ts';

const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const UPLOAD_ID = /^[0-9a-f]{32}$/;
/** S3's limits: parts 1..10000, each but the last at least 5 MiB, at most 5 GiB. */
const MAX_PARTS = 10_000;
const MIN_PART = 5 * 1024 * 1024;
const MAX_PART = 5 * 1024 * 1024 * 1024;
/** A CompleteMultipartUpload body lists at most 10,000 parts: ~1 MiB of XML. */
const MAX_COMPLETE_BODY = 2 * 1024 * 1024;

interface UploadMeta {
  objectName: string;
  /** The profile (runner name) that owns it: another key of the same runner may continue it. */
  profile: string;
  metadata: Record<string, string>;
  contentType?: string;
  initiated: string;
}

const xml = (body: string): Answer => ({ status: 200, headers: { 'Content-Type': 'application/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` });
const noSuchUpload = (): S3Error => new S3Error('NoSuchUpload', 404, 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');

export function stagingRoot(dataDir: string): string {
  return join(dataDir, 's3api-multipart');
}

/** The multipart operations, for the listener's `extra` hook: undefined when the request is not one. */
export function multipartOperation(op: OperationInput, dataDir: string): Promise<Answer> | undefined {
  const { req, query } = op;
  const root = stagingRoot(dataDir);
  if (req.method === 'POST' && query.has('uploads')) {
    op.setOperation('CreateMultipartUpload');
    return create(op, root);
  }
  const uploadId = query.get('uploadId');
  if (uploadId === undefined) {
    if (req.method === 'POST') throw new S3Error('NotImplemented', 501, 'this POST is not supported by cachegate\'s S3 front door');
    return undefined;
  }
  switch (req.method) {
    case 'PUT':
      op.setOperation('UploadPart');
      if (req.headers['x-amz-copy-source'] !== undefined) throw new S3Error('NotImplemented', 501, 'UploadPartCopy is not supported');
      return uploadPart(op, root, uploadId);
    case 'POST':
      op.setOperation('CompleteMultipartUpload');
      return complete(op, root, uploadId);
    case 'DELETE':
      op.setOperation('AbortMultipartUpload');
      return abort(op, root, uploadId);
    case 'GET':
      op.setOperation('ListParts');
      return listParts(op, root, uploadId);
    default:
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.');
  }
}

async function create(op: OperationInput, root: string): Promise<Answer> {
  const id = randomBytes(16).toString('hex');
  const metadata: Record<string, string> = {};
  for (const name of op.sig.signedHeaders) {
    const v = op.req.headers[name];
    if (name.startsWith(META_HEADER_PREFIX) && typeof v === 'string') metadata[name.slice(META_HEADER_PREFIX.length)] = v;
  }
  const contentType = op.req.headers['content-type'];
  const meta: UploadMeta = { objectName: op.object.objectName, profile: op.principal.profile.name, metadata, ...(contentType ? { contentType } : {}), initiated: new Date().toISOString() };
  const dir = join(root, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'upload.json'), JSON.stringify(meta), { mode: 0o600 });
  return xml(`<InitiateMultipartUploadResult xmlns="${XMLNS}"><Bucket>${xmlEscape(op.bucket)}</Bucket><Key>${xmlEscape(meta.objectName)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
}

/** The upload's folder and record, refused unless it is this object's and this runner's. */
async function openUpload(op: OperationInput, root: string, id: string): Promise<{ dir: string; meta: UploadMeta }> {
  if (!UPLOAD_ID.test(id)) throw noSuchUpload();
  const dir = join(root, id);
  let meta: UploadMeta;
  try {
    meta = JSON.parse(await readFile(join(dir, 'upload.json'), 'utf8')) as UploadMeta;
  } catch {
    throw noSuchUpload();
  }
  if (meta.objectName !== op.object.objectName || meta.profile !== op.principal.profile.name) throw noSuchUpload();
  return { dir, meta };
}

interface StagedPart {
  number: number;
  etag: string;
  size: number;
  lastModified: Date;
}

async function stagedParts(dir: string): Promise<StagedPart[]> {
  const parts: StagedPart[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = /^part-(\d{5})\.([0-9a-f]{32})$/.exec(f);
    if (!m) continue;
    const st = await stat(join(dir, f)).catch(() => undefined);
    if (st) parts.push({ number: Number(m[1]), etag: `"${m[2]}"`, size: st.size, lastModified: st.mtime });
  }
  // The newest upload of a part number wins (a client may resend a part).
  parts.sort((a, b) => a.number - b.number || b.lastModified.getTime() - a.lastModified.getTime());
  return parts.filter((p, i) => i === 0 || parts[i - 1].number !== p.number);
}

function partFile(dir: string, p: { number: number; etag: string }): string {
  return join(dir, `part-${String(p.number).padStart(5, '0')}.${p.etag.replace(/"/g, '')}`);
}

/** Fails past `max` bytes (0 = unlimited) with EntityTooLarge. */
class Cap extends Transform {
  bytes = 0;
  private readonly max: number;
  constructor(max: number) {
    super();
    this.max = max;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.max > 0 && this.bytes > this.max) cb(new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size (${this.max} bytes)`));
    else cb(null, chunk);
  }
}

function profileMax(p: S3Principal): number {
  return p.profile.cache.maxUploadedArchiveSize;
}

async function uploadPart(op: OperationInput, root: string, id: string): Promise<Answer> {
  const n = op.query.get('partNumber') ?? '';
  if (!/^[0-9]{1,5}$/.test(n) || Number(n) < 1 || Number(n) > MAX_PARTS) throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
  const { dir } = await openUpload(op, root, id);
  const { body, length } = objectBody(op.req, op.sig);
  const max = profileMax(op.principal);
  const staged = (await stagedParts(dir)).filter((p) => p.number !== Number(n)).reduce((s, p) => s + p.size, 0);
  // Each part, and what is staged with it, stays under the cap: a runaway upload fills no disk.
  const room = max > 0 ? max - staged : MAX_PART;
  if (length !== undefined && length > Math.min(room, MAX_PART)) {
    body.destroy();
    throw new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size (${max > 0 ? `MaxUploadedArchiveSize ${max}` : '5 GiB per part'})`);
  }
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  const md5 = createHash('md5');
  const cap = new Cap(Math.max(0, Math.min(room, MAX_PART)));
  const hash = new Transform({ transform(chunk: Buffer, _e, cb) { md5.update(chunk); cb(null, chunk); } });
  try {
    await pipeline(body, cap, hash, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    const etag = `"${md5.digest('hex')}"`;
    await rename(tmp, partFile(dir, { number: Number(n), etag }));
    op.object.metrics.bytes.inc({ direction: 'in' }, cap.bytes);
    return { status: 200, headers: { ETag: etag } };
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof S3Error && err.s3Code === 'EntityTooLarge') op.object.metrics.sizeRefusals.inc({ where: 's3api' });
    throw err;
  }
}

async function readSmallBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_COMPLETE_BODY) throw new S3Error('MalformedXML', 400, 'The CompleteMultipartUpload body is too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** <Part><PartNumber>n</PartNumber><ETag>"…"</ETag></Part>… (other elements, e.g. checksums, ignored). */
function parseCompleteBody(text: string): Array<{ number: number; etag: string }> {
  if (!/<CompleteMultipartUpload[\s>]/.test(text)) throw new S3Error('MalformedXML', 400, 'The XML you provided was not well-formed or did not validate against our published schema.');
  const parts: Array<{ number: number; etag: string }> = [];
  for (const m of text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
    const num = /<PartNumber>\s*(\d{1,5})\s*<\/PartNumber>/.exec(m[1]);
    const etag = /<ETag>\s*([^<]*?)\s*<\/ETag>/.exec(m[1]);
    if (!num || !etag) throw new S3Error('MalformedXML', 400, 'every Part needs a PartNumber and an ETag');
    const e = etag[1].replace(/&quot;/g, '"').replace(/"/g, '');
    parts.push({ number: Number(num[1]), etag: `"${e}"` });
  }
  if (parts.length === 0) throw new S3Error('MalformedXML', 400, 'You must specify at least one part');
  return parts;
}

async function complete(op: OperationInput, root: string, id: string): Promise<Answer> {
  const { dir, meta } = await openUpload(op, root, id);
  const wanted = parseCompleteBody(await readSmallBody(op.req));
  const staged = new Map((await stagedParts(dir)).map((p) => [`${p.number}|${p.etag}`, p]));
  const chosen: StagedPart[] = [];
  if (wanted.some((w, i) => i > 0 && w.number <= wanted[i - 1].number)) {
    throw new S3Error('InvalidPartOrder', 400, 'The list of parts was not in ascending order. Parts must be ordered by part number.');
  }
  for (const [i, w] of wanted.entries()) {
    const p = staged.get(`${w.number}|${w.etag}`);
    if (!p) throw new S3Error('InvalidPart', 400, `One or more of the specified parts could not be found (part ${w.number} with ETag ${w.etag}).`);
    if (i < wanted.length - 1 && p.size < MIN_PART) throw new S3Error('EntityTooSmall', 400, `Your proposed upload is smaller than the minimum allowed object size: part ${p.number} is ${p.size} bytes, the minimum for all but the last part is ${MIN_PART}`);
    chosen.push(p);
  }
  const total = chosen.reduce((s, p) => s + p.size, 0);
  const max = profileMax(op.principal);
  if (max > 0 && total > max) {
    op.object.metrics.sizeRefusals.inc({ where: 's3api' });
    throw new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size (${total} > MaxUploadedArchiveSize ${max})`);
  }
  // The parts, one file after another, as one stream into the backend.
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  void (async () => {
    for (const p of chosen) await pipeline(createReadStream(partFile(dir, p), { highWaterMark: 1 << 20 }), body, { end: false });
    body.end();
  })().catch((err: unknown) => body.destroy(err as Error));
  const { adapter } = op.object;
  const info = await backendCall(adapter, () => adapter.put(meta.objectName, { body, contentLength: total, metadata: meta.metadata, maxSize: max, ...(meta.contentType ? { contentType: meta.contentType } : {}) }));
  await rm(dir, { recursive: true, force: true });
  const md5s = createHash('md5');
  for (const p of chosen) md5s.update(Buffer.from(p.etag.replace(/"/g, ''), 'hex'));
  const etag = info.etag ?? `"${md5s.digest('hex')}-${chosen.length}"`;
  return xml(`<CompleteMultipartUploadResult xmlns="${XMLNS}"><Bucket>${xmlEscape(op.bucket)}</Bucket><Key>${xmlEscape(meta.objectName)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`);
}

async function abort(op: OperationInput, root: string, id: string): Promise<Answer> {
  const { dir } = await openUpload(op, root, id);
  await rm(dir, { recursive: true, force: true });
  return { status: 204, headers: {} };
}

async function listParts(op: OperationInput, root: string, id: string): Promise<Answer> {
  const { dir, meta } = await openUpload(op, root, id);
  const parts = await stagedParts(dir);
  let out = `<ListPartsResult xmlns="${XMLNS}"><Bucket>${xmlEscape(op.bucket)}</Bucket><Key>${xmlEscape(meta.objectName)}</Key><UploadId>${id}</UploadId><MaxParts>${MAX_PARTS}</MaxParts><IsTruncated>false</IsTruncated>`;
  for (const p of parts) out += `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(p.etag)}</ETag><Size>${p.size}</Size></Part>`;
  return xml(out + '</ListPartsResult>');
}

/** Removes uploads whose record is older than `maxAgeSeconds`; returns how many. */
export async function sweepAbandoned(dataDir: string, maxAgeSeconds: number, now = Date.now()): Promise<number> {
  const root = stagingRoot(dataDir);
  let removed = 0;
  for (const id of await readdir(root).catch(() => [] as string[])) {
    if (!UPLOAD_ID.test(id)) continue;
    const st = await stat(join(root, id, 'upload.json')).catch(() => undefined);
    const born = st?.mtimeMs ?? (await stat(join(root, id)).catch(() => undefined))?.mtimeMs;
    if (born !== undefined && now - born > maxAgeSeconds * 1000) {
      await rm(join(root, id), { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}
