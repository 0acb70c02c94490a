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
import { backendCall } from '../service/objects.ts';
import type { S3Principal } from './access-keys.ts';
import { S3Error, xmlEscape } from './errors.ts';
import { signedMetadata } from './metadata.ts';
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
/** Unfinished uploads one runner may hold: each may stage up to its MaxUploadedArchiveSize on disk. */
export const MAX_OPEN_UPLOADS = 100;

interface UploadMeta {
  objectName: string;
  /** The profile (runner name) that owns it: another key of the same runner may continue it. */
  profile: string;
  metadata: Record<string, string>;
  contentType?: string;
  initiated: string;
}

const xml = (body: string): Answer => ({ status: 200, headers: { 'Content-Type': 'application/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` });
/** A staging file vanished under a request: the upload was aborted or completed meanwhile (by another request). */
const goneMeanwhile = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' || ((err as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code === 'ENOENT');
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

/** Creates in progress per runner: counted with the uploads on disk, so that a burst of creates cannot pass the cap together. */
const creating = new Map<string, number>();

async function openUploadsOf(root: string, profile: string): Promise<number> {
  let n = 0;
  for (const id of await readdir(root).catch(() => [] as string[])) {
    if (!UPLOAD_ID.test(id)) continue;
    const meta = await readFile(join(root, id, 'upload.json'), 'utf8').then((t) => JSON.parse(t) as UploadMeta, () => undefined);
    if (meta?.profile === profile) n++;
  }
  return n;
}

async function create(op: OperationInput, root: string): Promise<Answer> {
  const runner = op.principal.profile.name;
  creating.set(runner, (creating.get(runner) ?? 0) + 1);
  try {
    if ((await openUploadsOf(root, runner)) + (creating.get(runner) ?? 1) - 1 >= MAX_OPEN_UPLOADS) {
      throw new S3Error('SlowDown', 503, `this runner has ${MAX_OPEN_UPLOADS} unfinished multipart uploads: complete or abort some`, { 'Retry-After': '60' });
    }
    return await createUpload(op, root);
  } finally {
    const left = (creating.get(runner) ?? 1) - 1;
    if (left > 0) creating.set(runner, left);
    else creating.delete(runner);
  }
}

async function createUpload(op: OperationInput, root: string): Promise<Answer> {
  const id = randomBytes(16).toString('hex');
  const metadata = signedMetadata(op.req, op.sig.signedHeaders);
  const contentType = op.req.headers['content-type'];
  const meta: UploadMeta = { objectName: op.object.objectName, profile: op.principal.profile.name, metadata, ...(contentType ? { contentType } : {}), initiated: new Date().toISOString() };
  const dir = join(root, id);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'upload.json'), JSON.stringify(meta), { mode: 0o600 });
  held.set(id, Promise.resolve({ bytes: 0, writing: new Map() }));
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
    held.delete(id);
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

/**
 * What an upload holds in its staging folder, as this process counts it: every part file, a part
 * being replaced until its successor is stored, and the parts being written right now. Parts sent at
 * the same time all count against the one cap, and a part sent again replaces the earlier file.
 * Loaded from the folder on first use (after a restart), dropped when the upload ends.
 */
interface Holding {
  bytes: number;
  /** Part numbers being written now (how many of each). */
  writing: Map<number, number>;
}
const held = new Map<string, Promise<Holding>>();

function holding(id: string, dir: string): Promise<Holding> {
  let h = held.get(id);
  if (!h) {
    h = (async () => {
      let bytes = 0;
      for (const f of await readdir(dir).catch(() => [] as string[])) if (f !== 'upload.json') bytes += (await stat(join(dir, f)).catch(() => undefined))?.size ?? 0;
      return { bytes, writing: new Map<number, number>() };
    })();
    held.set(id, h);
  }
  return h;
}

/** The files of part `n` other than `keep`, with their sizes. */
async function filesOfPart(dir: string, n: number, keep?: string): Promise<Array<{ file: string; size: number }>> {
  const prefix = `part-${String(n).padStart(5, '0')}.`;
  const out: Array<{ file: string; size: number }> = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!f.startsWith(prefix) || f === keep) continue;
    const st = await stat(join(dir, f)).catch(() => undefined);
    if (st) out.push({ file: f, size: st.size });
  }
  return out;
}

const tooLarge = (max: number): S3Error => new S3Error('EntityTooLarge', 400, `Your proposed upload exceeds the maximum allowed size (${max > 0 ? `MaxUploadedArchiveSize ${max}` : '5 GiB per part'})`);

/**
 * Counts a part's bytes into its upload's holding (a declared length is counted from the start);
 * fails with EntityTooLarge past 5 GiB or when the upload would hold more than `limit`.
 */
class Cap extends Transform {
  bytes = 0;
  private readonly h: Holding;
  private readonly declared: number;
  private readonly limit: number;
  private readonly max: number;
  constructor(h: Holding, declared: number, limit: number, max: number) {
    super();
    this.h = h;
    this.declared = declared;
    this.limit = limit;
    this.max = max;
    h.bytes += declared;
  }
  /** What this part adds to its upload's holding now. */
  get counted(): number {
    return Math.max(this.bytes, this.declared);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    const before = this.counted;
    this.bytes += chunk.length;
    this.h.bytes += this.counted - before;
    if (this.bytes > MAX_PART || this.h.bytes > this.limit) cb(tooLarge(this.max));
    else cb(null, chunk);
  }
}

function profileMax(p: S3Principal): number {
  return p.profile.cache.maxUploadedArchiveSize;
}

async function uploadPart(op: OperationInput, root: string, id: string): Promise<Answer> {
  const n = op.query.get('partNumber') ?? '';
  if (!/^[0-9]{1,5}$/.test(n) || Number(n) < 1 || Number(n) > MAX_PARTS) throw new S3Error('InvalidArgument', 400, `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
  const num = Number(n);
  const { dir } = await openUpload(op, root, id);
  const { body, length } = objectBody(op.req, op.sig);
  const max = profileMax(op.principal);
  const h = await holding(id, dir);
  // The part this one replaces is removed once it is stored, so it does not count against it, unless
  // the same part number is being written at the same time (then both count: never more than the cap on disk).
  const replaced = h.writing.has(num) ? 0 : (await filesOfPart(dir, num)).reduce((s, f) => s + f.size, 0);
  const limit = max > 0 ? max + replaced : Infinity;
  if (length !== undefined && (length > MAX_PART || h.bytes + length > limit)) {
    body.destroy();
    throw tooLarge(max);
  }
  // Checked and counted in one step (no await between): parts that arrive together cannot all pass.
  const cap = new Cap(h, length ?? 0, limit, max);
  h.writing.set(num, (h.writing.get(num) ?? 0) + 1);
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  const md5 = createHash('md5');
  const hash = new Transform({ transform(chunk: Buffer, _e, cb) { md5.update(chunk); cb(null, chunk); } });
  try {
    await pipeline(body, cap, hash, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
    const etag = `"${md5.digest('hex')}"`;
    const file = partFile(dir, { number: num, etag });
    const older = await filesOfPart(dir, num);
    await rename(tmp, file);
    h.bytes -= cap.counted - cap.bytes;
    for (const f of older) {
      if (f.file !== file.slice(dir.length + 1)) await rm(join(dir, f.file), { force: true });
      h.bytes -= f.size;
    }
    op.object.metrics.bytes.inc({ direction: 'in' }, cap.bytes);
    return { status: 200, headers: { ETag: etag } };
  } catch (err) {
    await rm(tmp, { force: true });
    h.bytes -= cap.counted;
    if (err instanceof S3Error && err.s3Code === 'EntityTooLarge') op.object.metrics.sizeRefusals.inc({ where: 's3api' });
    if (goneMeanwhile(err)) throw noSuchUpload();
    throw err;
  } finally {
    const left = (h.writing.get(num) ?? 1) - 1;
    if (left > 0) h.writing.set(num, left);
    else h.writing.delete(num);
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
  // One Complete wins: the record is renamed away (atomic, also between replicas sharing data_dir);
  // a Complete that finds it gone answers NoSuchUpload, as S3 does once an upload is completed.
  const record = join(dir, 'upload.json');
  const claimed = join(dir, 'completing.json');
  await rename(record, claimed).catch((err: unknown) => {
    throw goneMeanwhile(err) ? noSuchUpload() : err;
  });
  // The parts, one file after another, as one stream into the backend.
  const body = new PassThrough({ highWaterMark: 1 << 20 });
  void (async () => {
    for (const p of chosen) await pipeline(createReadStream(partFile(dir, p), { highWaterMark: 1 << 20 }), body, { end: false });
    body.end();
  })().catch((err: unknown) => body.destroy(err as Error));
  const { adapter } = op.object;
  const info = await backendCall(adapter, () => adapter.put(meta.objectName, { body, contentLength: total, metadata: meta.metadata, maxSize: max, ...(meta.contentType ? { contentType: meta.contentType } : {}) })).catch(async (err: unknown) => {
    if (goneMeanwhile(err)) throw noSuchUpload();
    // Nothing was stored: the upload is open again, so the client can retry its Complete (or abort).
    await rename(claimed, record).catch(() => undefined);
    throw err;
  });
  await rm(dir, { recursive: true, force: true });
  held.delete(id);
  const md5s = createHash('md5');
  for (const p of chosen) md5s.update(Buffer.from(p.etag.replace(/"/g, ''), 'hex'));
  const etag = info.etag ?? `"${md5s.digest('hex')}-${chosen.length}"`;
  return xml(`<CompleteMultipartUploadResult xmlns="${XMLNS}"><Bucket>${xmlEscape(op.bucket)}</Bucket><Key>${xmlEscape(meta.objectName)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`);
}

async function abort(op: OperationInput, root: string, id: string): Promise<Answer> {
  const { dir } = await openUpload(op, root, id);
  await rm(dir, { recursive: true, force: true });
  held.delete(id);
  return { status: 204, headers: {} };
}

async function listParts(op: OperationInput, root: string, id: string): Promise<Answer> {
  const { dir, meta } = await openUpload(op, root, id);
  const parts = await stagedParts(dir);
  let out = `<ListPartsResult xmlns="${XMLNS}"><Bucket>${xmlEscape(op.bucket)}</Bucket><Key>${xmlEscape(meta.objectName)}</Key><UploadId>${id}</UploadId><MaxParts>${MAX_PARTS}</MaxParts><IsTruncated>false</IsTruncated>`;
  for (const p of parts) out += `<Part><PartNumber>${p.number}</PartNumber><LastModified>${p.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(p.etag)}</ETag><Size>${p.size}</Size></Part>`;
  return xml(out + '</ListPartsResult>');
}

/**
 * ListMultipartUploads, confined like every list: the caller's own runner's unfinished uploads inside
 * its namespace (a `prefix` must lie inside it: AccessDenied otherwise, by the caller). A runner holds
 * at most MAX_OPEN_UPLOADS, so one page always holds them all.
 */
export async function listUploads(root: string, p: S3Principal, bucket: string, prefix: string): Promise<Answer> {
  const found: Array<{ id: string; meta: UploadMeta }> = [];
  for (const id of await readdir(root).catch(() => [] as string[])) {
    if (!UPLOAD_ID.test(id)) continue;
    const meta = await readFile(join(root, id, 'upload.json'), 'utf8').then((t) => JSON.parse(t) as UploadMeta, () => undefined);
    if (meta === undefined || meta.profile !== p.profile.name || !meta.objectName.startsWith(`${p.namespace}/`) || !meta.objectName.startsWith(prefix)) continue;
    found.push({ id, meta });
  }
  found.sort((a, b) => (a.meta.objectName < b.meta.objectName ? -1 : a.meta.objectName > b.meta.objectName ? 1 : a.meta.initiated < b.meta.initiated ? -1 : 1));
  const owner = '<ID>cachegate</ID><DisplayName>cachegate</DisplayName>';
  let out = `<ListMultipartUploadsResult xmlns="${XMLNS}"><Bucket>${xmlEscape(bucket)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>`;
  for (const { id, meta } of found) {
    out += `<Upload><Key>${xmlEscape(meta.objectName)}</Key><UploadId>${id}</UploadId><Initiator>${owner}</Initiator><Owner>${owner}</Owner><StorageClass>STANDARD</StorageClass><Initiated>${xmlEscape(meta.initiated)}</Initiated></Upload>`;
  }
  return xml(out + '</ListMultipartUploadsResult>');
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
      held.delete(id);
      removed++;
    }
  }
  return removed;
}
